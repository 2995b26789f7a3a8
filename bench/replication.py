#!/usr/bin/env python3
"""Replication, ferrodis vs redis-server 7.0, written to bench/REPLICATION.md.

1. Full sync: a master holding `--keys` keys (DEBUG POPULATE, 100-byte values); the time from
   REPLICAOF on a fresh replica until its link is up and its offset equals the master's.
   Each server with its defaults (Redis 7.0: diskless sync) but `repl-diskless-sync-delay 0`.
2. Master throughput: `redis-benchmark -t set -P 16 -c 50 -r 1000000 -d 64` against the master
   with 0 and then 2 replicas attached; the ratio says what feeding replicas costs.
3. Replica lag under that load: the master's offset minus each replica's, sampled every 50 ms
   during the 2-replica run (median and max, in bytes), and the time the replicas need to
   catch up once the benchmark ends.

Runs are interleaved (redis, ferrodis, redis, ...) and each figure is the median of `--rounds`.

Usage: bench/replication.py [--rounds 3] [--keys 1000000] [--n 2000000] [--binary PATH]
(needs redis-server, redis-cli, redis-benchmark and `cargo build --release`; `--binary`
chooses another ferrodis-server, e.g. target/debug/ferrodis-server for a smoke run, whose
figures say nothing about speed).
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
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "REPLICATION.md")
spec = importlib.util.spec_from_file_location("snap", os.path.join(ROOT, "bench", "snapshot.py"))
snap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snap)


def start(kind, exe, d, *extra):
    port = snap.free_port()
    binary = exe if kind == "ferrodis" else "redis-server"
    cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
           "--appendonly", "no", "--repl-diskless-sync-delay", "0",
           "--enable-debug-command", "yes", "--logfile", "server.log", *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while snap.ping(port) != "PONG":
        if p.poll() is not None:
            raise RuntimeError(f"{kind} exited")
        time.sleep(0.002)
    return p, port


def info(port, section):
    out = snap.cli(port, "INFO", section)
    return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)


def in_sync(replica, master):
    r = info(replica, "replication")
    m = info(master, "replication")
    return (r.get("master_link_status") == "up"
            and r.get("master_repl_offset") == m.get("master_repl_offset"))


def attach(replica, master):
    """REPLICAOF, then the seconds until the replica is in sync."""
    t0 = time.perf_counter()
    snap.cli(replica, "REPLICAOF", "127.0.0.1", str(master))
    while not in_sync(replica, master):
        time.sleep(0.01)
    return time.perf_counter() - t0


def rps(port, n):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-c", "50", "-P",
                          "16", "-r", "1000000", "-n", str(n), "-d", "64", "-q"],
                         capture_output=True, text=True).stdout
    m = re.search(r"SET: ([0-9.]+) requests per second", out)
    return float(m.group(1)) if m else float("nan")


def sample_lag(master, replicas, stop, lags):
    while not stop.is_set():
        try:
            # The replicas first: the master's offset read after theirs bounds their lag.
            offs = [int(info(r, "replication")["master_repl_offset"]) for r in replicas]
            m = int(info(master, "replication")["master_repl_offset"])
            lags.extend(m - o for o in offs)
        except (KeyError, ValueError, subprocess.CalledProcessError):
            pass
        time.sleep(0.05)


def tempdir(kind, what):
    return tempfile.mkdtemp(prefix=f"replbench-{what}-{kind}-")


def full_sync_run(kind, exe, keys):
    pm, m = start(kind, exe, tempdir(kind, "m"))
    snap.cli(m, "DEBUG", "POPULATE", str(keys), "key", "100")
    pr, r = start(kind, exe, tempdir(kind, "r"))
    secs = attach(r, m)
    assert snap.cli(r, "DBSIZE") == str(keys)
    snap.stop(pr, r)
    snap.stop(pm, m)
    return secs


def load_run(kind, exe, n):
    """(rps alone, rps with 2 replicas, median lag, max lag, catch-up seconds)."""
    pm, m = start(kind, exe, tempdir(kind, "m"))
    alone = rps(m, n)
    snap.cli(m, "FLUSHALL")
    reps = [start(kind, exe, tempdir(kind, f"r{i}")) for i in range(2)]
    for _, r in reps:
        attach(r, m)
    stop, lags = threading.Event(), []
    t = threading.Thread(target=sample_lag, args=(m, [r for _, r in reps], stop, lags))
    t.start()
    with_two = rps(m, n)
    stop.set()
    t.join()
    t0 = time.perf_counter()
    while not all(in_sync(r, m) for _, r in reps):
        time.sleep(0.01)
    catch_up = time.perf_counter() - t0
    for p, r in reps:
        snap.stop(p, r)
    snap.stop(pm, m)
    lags = lags or [0]
    return alone, with_two, statistics.median(lags), max(lags), catch_up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--binary", default=snap.FERRODIS)
    a = ap.parse_args()
    sync = {"redis": [], "ferrodis": []}
    load = {"redis": [], "ferrodis": []}
    for _ in range(a.rounds):
        for kind in ("redis", "ferrodis"):
            sync[kind].append(full_sync_run(kind, a.binary, a.keys))
            load[kind].append(load_run(kind, a.binary, a.n))
            print(kind, sync[kind][-1], load[kind][-1], file=sys.stderr)
    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in load.items()}
    fs = {k: statistics.median(v) for k, v in sync.items()}
    smoke = os.path.abspath(a.binary) != os.path.abspath(snap.FERRODIS)
    notes = snap.kept_notes(OUT)
    with open(OUT, "w") as f:
        f.write("# Replication: ferrodis vs redis-server\n\n")
        f.write(f"Produced by `bench/replication.py --rounds {a.rounds} --keys {a.keys} --n {a.n}"
                f"` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, medians of interleaved "
                "runs on this shared 2-core machine, loopback.\n\n")
        if smoke:
            f.write(f"**Smoke run with `{os.path.relpath(a.binary, ROOT)}`: these figures check "
                    "the script, they do not measure ferrodis.** Run it again with the release "
                    "build and the defaults for real figures.\n\n")
        f.write("| | redis | ferrodis | ferrodis / redis |\n| --- | ---: | ---: | ---: |\n")
        f.write(f"| full sync of {a.keys} keys (s) | {fs['redis']:.2f} | {fs['ferrodis']:.2f} | "
                f"{fs['ferrodis'] / fs['redis']:.2f} |\n")
        labels = ["SET -P 16 -c 50, no replica (rps)", "SET -P 16 -c 50, 2 replicas (rps)"]
        for i, label in enumerate(labels):
            rr, fr = med["redis"][i], med["ferrodis"][i]
            f.write(f"| {label} | {rr:.0f} | {fr:.0f} | {fr / rr:.2f} |\n")
        for k in ("redis", "ferrodis"):
            med[k].append(med[k][1] / med[k][0])
        f.write(f"| throughput kept with 2 replicas | {med['redis'][5]:.2f} | "
                f"{med['ferrodis'][5]:.2f} | |\n")
        f.write(f"| replica lag under load, median (bytes) | {med['redis'][2]:.0f} | "
                f"{med['ferrodis'][2]:.0f} | |\n")
        f.write(f"| replica lag under load, max (bytes) | {med['redis'][3]:.0f} | "
                f"{med['ferrodis'][3]:.0f} | |\n")
        f.write(f"| catch-up after the load (s) | {med['redis'][4]:.3f} | "
                f"{med['ferrodis'][4]:.3f} | |\n")
        f.write(notes)
    print(open(OUT).read())


if __name__ == "__main__":
    main()
