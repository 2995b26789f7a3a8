#!/usr/bin/env python3
"""The append-only log, ferrodis vs redis-server 7.0, written to bench/AOF.md.

1. Throughput of SET with `appendonly yes` under each `appendfsync` policy, `redis-benchmark
   -t set -c 50 -r 1000000` at `-P 1` and `-P 16`, interleaved, medians of `--rounds`.
2. Restart from the log: 1M 64-byte strings written through `redis-cli --pipe` (a pure
   incremental log, no rewrite), then the spawn-until-PONG time, medians of `--rounds`.
3. Log size after BGREWRITEAOF of that data (both servers' default `aof-use-rdb-preamble yes`).

Usage: bench/aof.py [--rounds 3] [--n 100000]  (needs redis-server, redis-cli, redis-benchmark
and `cargo build --release`).
"""
import argparse
import datetime
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "AOF.md")
spec = importlib.util.spec_from_file_location("snap", os.path.join(ROOT, "bench", "snapshot.py"))
snap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snap)


def start(kind, d, *extra):
    port = snap.free_port()
    exe = snap.FERRODIS if kind == "ferrodis" else "redis-server"
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
           "--appendonly", "yes", "--logfile", "server.log", *extra]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while snap.ping(port) != "PONG":
        if p.poll() is not None:
            raise RuntimeError(f"{kind} exited")
        time.sleep(0.002)
    return p, port, time.perf_counter() - t0


def rps(port, pipe, n):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "50", "-P",
                          str(pipe), "-r", "1000000", "-n", str(n), "-d", "64", "-q"],
                         capture_output=True, text=True).stdout
    m = re.search(r"SET: ([0-9.]+) requests per second", out)
    return float(m.group(1)) if m else float("nan")


def dir_size(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs
               if f.endswith((".aof", ".rdb", ".manifest")))


def fsync_ms(n=200):
    """Median and p99 of an fdatasync after a 100-byte append, in a temporary directory."""
    fd, path = tempfile.mkstemp(prefix="aofbench-fsync-")
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 100)
            t = time.perf_counter()
            os.fdatasync(fd)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[n // 2], times[n * 99 // 100]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000)
    a = ap.parse_args()
    fsync_before = fsync_ms()
    thr = {}
    for policy in ("always", "everysec", "no"):
        for pipe in (1, 16):
            res = {"redis": [], "ferrodis": []}
            for _ in range(a.rounds):
                for kind in ("redis", "ferrodis"):
                    d = tempfile.mkdtemp(prefix=f"aofbench-{kind}-")
                    p, port, _ = start(kind, d, "--appendfsync", policy)
                    n = a.n if pipe == 16 or policy != "always" else a.n // 4
                    res[kind].append(rps(port, pipe, n))
                    snap.stop(p, port)
            thr[(policy, pipe)] = {k: statistics.median(v) for k, v in res.items()}
            print(policy, pipe, thr[(policy, pipe)], file=sys.stderr)
    restart, sizes = {}, {}
    for kind in ("redis", "ferrodis"):
        d = tempfile.mkdtemp(prefix=f"aofbench-load-{kind}-")
        p, port, _ = start(kind, d, "--appendfsync", "no")
        snap.fill(port, snap.memory.gen_strings, 1_000_000)
        snap.stop(p, port)
        times = []
        for _ in range(a.rounds):
            p, port, secs = start(kind, d, "--appendfsync", "no")
            assert snap.cli(port, "DBSIZE") == "1000000"
            times.append(secs)
            snap.stop(p, port)
        restart[kind] = statistics.median(times)
        p, port, _ = start(kind, d, "--appendfsync", "no")
        snap.cli(port, "BGREWRITEAOF")
        while "aof_rewrite_in_progress:0" not in snap.cli(port, "INFO", "persistence"):
            time.sleep(0.05)
        time.sleep(0.5)
        sizes[kind] = dir_size(os.path.join(d, "appendonlydir"))
        snap.stop(p, port)
        print(kind, restart[kind], sizes[kind], file=sys.stderr)
    notes = snap.kept_notes(OUT)
    with open(OUT, "w") as f:
        f.write("# Append-only log: ferrodis vs redis-server\n\n")
        f.write(f"Produced by `bench/aof.py` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, "
                f"medians of {a.rounds} interleaved runs on this 2-core machine. An fdatasync after "
                f"a 100-byte append took {fsync_before[0]:.2f} ms (median, p99 {fsync_before[1]:.2f} "
                "ms) just before the runs.\n\n")
        f.write("| appendfsync | pipeline | redis rps | ferrodis rps | ratio |\n"
                "| --- | ---: | ---: | ---: | ---: |\n")
        for (policy, pipe), r in thr.items():
            f.write(f"| {policy} | {pipe} | {r['redis']:.0f} | {r['ferrodis']:.0f} | "
                    f"{r['ferrodis'] / r['redis']:.2f} |\n")
        f.write("\n| 1M 64-byte strings | redis | ferrodis | ratio |\n| --- | ---: | ---: | ---: |\n")
        f.write(f"| restart from the log (s) | {restart['redis']:.3f} | {restart['ferrodis']:.3f} "
                f"| {restart['redis'] / restart['ferrodis']:.2f}x faster |\n")
        f.write(f"| log size after BGREWRITEAOF (bytes) | {sizes['redis']} | {sizes['ferrodis']} "
                f"| {sizes['ferrodis'] / sizes['redis']:.2f} |\n")
        f.write(notes)
    print(open(OUT).read())


if __name__ == "__main__":
    main()
