#!/usr/bin/env python3
"""Snapshots, ferrodis vs redis-server 7.0 on the same data, written to bench/SNAPSHOT.md.

Part 1, restart and size: for each data shape of bench/memory.py, a fresh server of each kind
is filled through `redis-cli --pipe`, SAVEs, and is restarted `--rounds` times (interleaved
with the other server); the restart time is the wall time from spawning the process until it
answers PING with PONG instead of -LOADING, polled every `--poll-ms` (a connection refused or
a -LOADING reply is retried after that pause, so the pause bounds the resolution). The table
gives the median and the minimum of the rounds: the machine is shared, and the minimum is
the least disturbed restart. The snapshot file sizes are compared too.

Part 2, BGSAVE under write load: each server is filled with `--bg-keys` 64-byte strings
under exactly the names `redis-benchmark -r` writes (about 2 GB of RSS in ferrodis at the
default), then `redis-benchmark -t set -P 16 -c 50` overwrites them for the whole
measurement, so the dataset keeps its size. Memory is sampled every 20 ms as the summed PSS
of the server and its children (Redis's forked child shares pages with its parent until
either writes: PSS counts each physical page once). A probe client sends GET every
millisecond on its own connection. After a 2 s warm-up, a 10 s idle window gives the p99
before the save; the p99 during the BGSAVE is compared with it, in a second run without
memory sampling (reading a process's PSS walks its page tables under its mmap lock, which
would disturb the latency being measured). The harness polls INFO over one connection
every 100 ms in both windows alike.

Usage: bench/snapshot.py [--scale 1.0] [--rounds 3] [--poll-ms 0.5] [--rows strings,hashes,...]
                         [--bg-keys 17000000] [--skip-bg] [--skip-restart]
(needs redis-server, redis-cli, redis-benchmark and `cargo build --release`). With --skip-bg
the BGSAVE section already in bench/SNAPSHOT.md is kept as it is, with --skip-restart the
restart table.
"""
import argparse
import datetime
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRODIS = os.path.join(ROOT, "target", "release", "ferrodis-server")
OUT = os.path.join(ROOT, "bench", "SNAPSHOT.md")
# In the reports of bench/aof.py and bench/replication.py, the hand-written notes from this
# line on survive a re-run (see `kept_notes`).
NOTES_MARK = ("<!-- Notes below this line are written by hand; the benchmark script keeps them "
              "when it rewrites the file. -->")


def kept_notes(path):
    """The notes of the report at `path` (from NOTES_MARK on), to append to its new version."""
    if not os.path.exists(path):
        return ""
    text = open(path).read()
    at = text.find(NOTES_MARK)
    return "" if at < 0 else "\n" + text[at:]

spec = importlib.util.spec_from_file_location("memory", os.path.join(ROOT, "bench", "memory.py"))
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)

SHAPES = [
    ("strings", "1M 64-byte strings", memory.gen_strings, 1_000_000),
    ("hashes", "10k hashes x 100 fields", memory.gen_hashes, 10_000),
    ("sets", "10k sets x 100 integers", memory.gen_sets, 10_000),
    ("zsets", "10k zsets x 100 members", memory.gen_zsets, 10_000),
    ("lists", "1k lists x 1000 items", memory.gen_lists, 1_000),
]
# Pause between two PINGs while waiting for a server (seconds); set from --poll-ms.
POLL = 0.0005


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def command(kind, port, d):
    exe = FERRODIS if kind == "ferrodis" else "redis-server"
    return [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
            "--appendonly", "no", "--dbfilename", "dump.rdb", "--logfile", "server.log",
            "--enable-debug-command", "yes"]


def ping(port):
    """PONG, LOADING or None (not listening yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            r = s.recv(64)
            return "PONG" if r.startswith(b"+PONG") else "LOADING" if b"LOADING" in r else r
    except OSError:
        return None


def start(kind, d, wait_loaded=True):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(command(kind, port, d), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        r = ping(port)
        if r == "PONG" or (r == "LOADING" and not wait_loaded):
            return p, port, time.perf_counter() - t0
        if p.poll() is not None:
            raise RuntimeError(f"{kind} exited: {open(os.path.join(d, 'server.log')).read()[-2000:]}")
        time.sleep(POLL)


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True,
                          text=True, check=True).stdout.strip()


def stop(p, port):
    try:
        cli(port, "SHUTDOWN", "NOSAVE")
    except subprocess.CalledProcessError:
        pass
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def fill(port, gen, n):
    data = b"".join(gen(n))
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stdout + r.stderr)


def restart_part(scale, rounds, wanted):
    rows = []
    for key, name, gen, n in SHAPES:
        if key not in wanted:
            continue
        n = max(1, int(n * scale))
        dirs, sizes, times = {}, {}, {"redis": [], "ferrodis": []}
        for kind in ("redis", "ferrodis"):
            d = tempfile.mkdtemp(prefix=f"snapbench-{kind}-")
            p, port, _ = start(kind, d)
            fill(port, gen, n)
            cli(port, "SAVE")
            keys = cli(port, "DBSIZE")
            stop(p, port)
            dirs[kind] = (d, keys)
            sizes[kind] = os.path.getsize(os.path.join(d, "dump.rdb"))
        for _ in range(rounds):
            for kind in ("redis", "ferrodis"):
                d, keys = dirs[kind]
                p, port, secs = start(kind, d)
                got = cli(port, "DBSIZE")
                stop(p, port)
                assert got == keys, f"{kind} loaded {got} keys, saved {keys}"
                times[kind].append(secs)
        for d, _ in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
        rt, ft = statistics.median(times["redis"]), statistics.median(times["ferrodis"])
        rmin, fmin = min(times["redis"]), min(times["ferrodis"])
        rows.append((name, rt, ft, rmin, fmin, sizes["redis"], sizes["ferrodis"]))
        print(f"{name}: restart redis {rt:.4f}s (min {rmin:.4f}) ferrodis {ft:.4f}s "
              f"(min {fmin:.4f}) {rt / ft:.2f}x (min {rmin / fmin:.2f}x), "
              f"file redis {sizes['redis']} ferrodis {sizes['ferrodis']}", file=sys.stderr)
    return rows


def pss_tree(pid):
    """Summed PSS (bytes) of `pid` and its children."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for q in pids:
        try:
            with open(f"/proc/{q}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


class Probe(threading.Thread):
    """GET every millisecond on its own connection, recording (time, round trip)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.samples, self.stop = port, [], False

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        req = b"*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n"
        while not self.stop:
            t0 = time.perf_counter()
            s.sendall(req)
            buf = b""
            while not buf.endswith(b"\r\n"):
                buf += s.recv(4096)
            self.samples.append((t0, time.perf_counter() - t0))
            time.sleep(0.001)
        s.close()


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))] if xs else float("nan")


class Control:
    """A plain RESP connection for the harness's own commands (BGSAVE, INFO). Spawning
    `redis-cli` for each poll, as this script once did, forked a process ten times a second
    during the save and never before it, on a machine whose two cores the load already fills:
    the measurement disturbed only the window it measured."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def call(self, *args):
        req = f"*{len(args)}\r\n".encode()
        for a in map(str, args):
            req += f"${len(a.encode())}\r\n{a}\r\n".encode()
        self.s.sendall(req)
        line = self.f.readline()
        if line[:1] == b"$":
            n = int(line[1:])
            return self.f.read(n + 2)[:-2].decode() if n >= 0 else None
        if line[:1] == b"-":
            raise RuntimeError(line.decode().strip())
        return line[1:].decode().strip()

    def close(self):
        self.s.close()


# Load running before the idle window starts (connections opening, the first allocations),
# and the idle window that gives the "before" p99.
WARMUP_S = 2.0
IDLE_S = 10.0
# How often INFO is polled, the same in the idle window and during the save.
POLL_S = 0.1


def poll_for(ctl, secs):
    """Polls INFO persistence every POLL_S for `secs`, as the harness does during the save."""
    end = time.perf_counter() + secs
    while time.perf_counter() < end:
        ctl.call("INFO", "persistence")
        time.sleep(POLL_S)


def populate_bench_keys(port, keys):
    """Writes exactly the keys the load will overwrite: `redis-benchmark -r N` names them
    key:%012d, 0 <= n < N, and its values are 64 bytes. Filled with DEBUG POPULATE's names
    instead (key:N), the load inserts a new key with nearly every SET, and the dataset grows by
    half within seconds: neither the memory peak nor the latency is then the save's. The same
    data goes to both servers: key:%012d -> value:N padded with zero bytes to 64."""
    pipe = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    step = 1_000_000
    for lo in range(0, keys, step):
        pipe.stdin.write(b"".join(
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$64\r\n%s\r\n"
            % (i, (b"value:%d" % i).ljust(64, b"\0")) for i in range(lo, min(keys, lo + step))))
    pipe.stdin.close()
    if pipe.wait() != 0:
        raise RuntimeError("redis-cli --pipe failed")
    got = int(cli(port, "DBSIZE"))
    if got != keys:
        raise RuntimeError(f"populated {got} keys, wanted {keys}")


def bgsave_run(kind, keys, sample_memory):
    """One BGSAVE under load. With `sample_memory` the PSS is sampled every 20 ms (walking the
    page tables takes the process's mmap lock, which disturbs latency); without it, the probe's
    round trips are the measurement. The harness does the same thing (INFO over one
    connection every POLL_S) in the idle window and during the save, so that the only
    difference between the two windows is the save."""
    d = tempfile.mkdtemp(prefix=f"snapbench-bg-{kind}-")
    p, port, _ = start(kind, d)
    populate_bench_keys(port, keys)
    ctl = Control(port)
    bench = subprocess.Popen(["redis-benchmark", "-p", str(port), "-t", "set", "-P", "16",
                              "-c", "50", "-r", str(keys), "-d", "64", "-n", "2000000000", "-q"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = Probe(port)
    probe.start()
    poll_for(ctl, WARMUP_S)
    t_idle = time.perf_counter()
    poll_for(ctl, IDLE_S)
    base = peak = pss_tree(p.pid)
    t_start = time.perf_counter()
    ctl.call("BGSAVE")
    while True:
        if sample_memory:
            peak = max(peak, pss_tree(p.pid))
        info = ctl.call("INFO", "persistence")
        if "rdb_bgsave_in_progress:0" in info:
            break
        time.sleep(0.02 if sample_memory else POLL_S)
    t_end = time.perf_counter()
    probe.stop = True
    probe.join()
    bench.kill()
    bench.wait()
    ctl.close()
    status = [l for l in info.splitlines() if l.startswith("rdb_last_bgsave_status")][0]
    during = [rt for t, rt in probe.samples if t_start <= t <= t_end]
    before = [rt for t, rt in probe.samples if t_idle <= t < t_start]
    stop(p, port)
    # Each run's files would otherwise pile up in the page cache (hundreds of MB a run).
    shutil.rmtree(d, ignore_errors=True)
    return {"kind": kind, "base": base, "peak": peak, "secs": t_end - t_start,
            "status": status, "p99_idle": p99(before) * 1000, "p99_save": p99(during) * 1000}


def bgsave_part(kind, keys):
    mem = bgsave_run(kind, keys, True)
    lat = bgsave_run(kind, keys, False)
    mem["p99_idle"], mem["p99_save"] = lat["p99_idle"], lat["p99_save"]
    return mem


def restart_table(rows, a):
    out = (f"Produced by `bench/snapshot.py` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC "
           f"(scale {a.scale}, {a.rounds} interleaved restarts per row, PING every "
           f"{a.poll_ms} ms). Restart = spawn until PING answers PONG; median and minimum "
           "of the rounds.\n\n"
           "| data | redis restart s (median / min) | ferrodis restart s (median / min) "
           "| speed-up (median / min) | redis file bytes | ferrodis file bytes | size ratio |\n"
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    for name, rt, ft, rmin, fmin, rs, fs in rows:
        out += (f"| {name} | {rt:.4f} / {rmin:.4f} | {ft:.4f} / {fmin:.4f} | "
                f"{rt / ft:.2f}x / {rmin / fmin:.2f}x | {rs} | {fs} | {fs / rs:.2f} |\n")
    load = open("/proc/loadavg").read().split()[:3]
    return out + f"\nMachine: {os.cpu_count()} cores; load average at the end {load}.\n"


def bgsave_table(bg, a):
    out = (f"## BGSAVE under `redis-benchmark -t set -P 16 -c 50` ({a.bg_keys} keys of "
           "64 bytes)\n\nMemory is the summed PSS of the server and its forked child. "
           "p99 is a GET probe's round trip during the save vs a 10 s window just before it "
           "(after a 2 s warm-up), under the same load, which overwrites the populated keys.\n\n")
    out += ("| server | before MB | peak MB | peak / before | save s | p99 before ms "
            "| p99 during ms | p99 ratio | status |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    for r in bg:
        out += (f"| {r['kind']} | {r['base'] / 2**20:.0f} | {r['peak'] / 2**20:.0f} | "
                f"{r['peak'] / r['base']:.2f} | {r['secs']:.1f} | {r['p99_idle']:.2f} | "
                f"{r['p99_save']:.2f} | {r['p99_save'] / r['p99_idle']:.2f} | {r['status']} |\n")
    load = open("/proc/loadavg").read().split()[:3]
    return out + f"\nMachine: {os.cpu_count()} cores; load average at the end {load}.\n"


def main():
    global POLL
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--poll-ms", type=float, default=0.5,
                    help="pause between PINGs while waiting for a restarting server")
    ap.add_argument("--rows", default=",".join(s[0] for s in SHAPES),
                    help="restart rows to run, comma-separated (default: all)")
    ap.add_argument("--bg-keys", type=int, default=17_000_000)
    ap.add_argument("--skip-bg", action="store_true",
                    help="skip the BGSAVE part (keeps its section of SNAPSHOT.md)")
    ap.add_argument("--skip-restart", action="store_true",
                    help="skip the restart part (keeps its table in SNAPSHOT.md)")
    a = ap.parse_args()
    POLL = a.poll_ms / 1000
    wanted = set(a.rows.split(","))
    rows = [] if a.skip_restart else restart_part(a.scale, a.rounds, wanted)
    bg = [] if a.skip_bg else [bgsave_part(k, a.bg_keys) for k in ("redis", "ferrodis")]
    for r in bg:
        print(r, file=sys.stderr)
    # A skipped part's section of the previous report is kept; so are the hand-written notes.
    old = open(OUT).read() if os.path.exists(OUT) else ""
    head = "# Snapshots: ferrodis vs redis-server\n\n"
    cut = old.find("## BGSAVE")
    mark = old.find(NOTES_MARK)
    old_restart = old[len(head):cut] if old.startswith(head) and cut >= 0 else ""
    old_bg = old[cut:] if cut >= 0 else ""
    notes = old[mark:] if mark >= 0 else ""
    with open(OUT, "w") as f:
        f.write(head)
        f.write(old_restart if a.skip_restart else restart_table(rows, a) + "\n")
        if bg:
            f.write(bgsave_table(bg, a) + ("\n" + notes if notes else ""))
        else:
            f.write(old_bg)
    print(open(OUT).read())


if __name__ == "__main__":
    main()
