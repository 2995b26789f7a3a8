#!/usr/bin/env python3
"""Resident memory of ferrodis vs redis-server on the same data, written to bench/MEMORY.md.

For each data shape, a fresh server of each kind is started (no persistence), its RSS is read
from /proc/<pid>/status, the data is loaded through `redis-cli --pipe`, the RSS is read again
after a short settle, and the difference (RSS minus empty-server RSS) is what we compare.
Shapes (issue 3): 1M 64-byte strings; 10k hashes of 100 small fields; 10k sets of 100
integers; 10k sorted sets of 100 members; 1k lists of 1000 items.

Usage: bench/memory.py [--shapes strings,hashes,...] [--scale 0.1]  (needs redis-server,
redis-cli on PATH and a release build: cargo build --release).
"""
import argparse
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FERRODIS = os.path.join(ROOT, "target", "release", "ferrodis-server")


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def gen_strings(n):
    val = b"v" * 64
    for i in range(n):
        yield resp("SET", "key:%d" % i, val)


def gen_hashes(n):
    for i in range(n):
        args = ["HSET", "hash:%d" % i]
        for f in range(100):
            args += ["field%d" % f, "value%d" % f]
        yield resp(*args)


def gen_sets(n):
    for i in range(n):
        yield resp("SADD", "set:%d" % i, *range(i, i + 100))


def gen_zsets(n):
    for i in range(n):
        args = ["ZADD", "zset:%d" % i]
        for m in range(100):
            args += [m * 1.5, "member:%d" % m]
        yield resp(*args)


def gen_lists(n):
    for i in range(n):
        for chunk in range(10):
            items = ["item:%d" % (chunk * 100 + j) for j in range(100)]
            yield resp("RPUSH", "list:%d" % i, *items)


SHAPES = {
    "strings": ("1M strings of 64 bytes", gen_strings, 1_000_000),
    "hashes": ("10k hashes of 100 small fields", gen_hashes, 10_000),
    "sets": ("10k sets of 100 integers", gen_sets, 10_000),
    "zsets": ("10k sorted sets of 100 members", gen_zsets, 10_000),
    "lists": ("1k lists of 1000 items", gen_lists, 1_000),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_ready(port):
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server on port %d did not start" % port)


def measure(binary, data_file, extra):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--save", "", "--appendonly", "no"] + extra
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port)
            time.sleep(0.5)
            empty = rss_kb(proc.pid)
            with open(data_file, "rb") as f:
                r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                                   capture_output=True, text=True)
            ok = "errors: 0" in r.stdout
            time.sleep(1.0)
            full = rss_kb(proc.pid)
            return (full - empty) * 1024, ok
        finally:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "MEMORY.md"))
    a = ap.parse_args()
    rows = []
    for name in a.shapes.split(","):
        title, gen, n = SHAPES[name]
        n = max(1, int(n * a.scale))
        with tempfile.NamedTemporaryFile(delete=False) as f:
            for cmd in gen(n):
                f.write(cmd)
            path = f.name
        try:
            r_bytes, r_ok = measure("redis-server", path, [])
            f_bytes, f_ok = measure(FERRODIS, path, [])
        finally:
            os.unlink(path)
        ratio = f_bytes / r_bytes if r_bytes > 0 else float("nan")
        rows.append((title if a.scale == 1.0 else "%s (x%g)" % (title, a.scale),
                     r_bytes, f_bytes, ratio, r_ok and f_ok, n))
        print("%-40s redis %8.1f MB  ferrodis %8.1f MB  ratio %.2f%s" % (
            rows[-1][0], r_bytes / 1e6, f_bytes / 1e6, ratio, "" if rows[-1][4] else "  (load errors!)"),
            flush=True)
    with open(a.out, "w") as out:
        out.write("# Memory: ferrodis vs redis-server\n\n")
        out.write("Resident memory added by loading each data set into a fresh server (RSS after "
                  "load minus RSS of the empty server), measured by `bench/memory.py` on %s. "
                  "Target (issue 3): ratio <= 0.80.\n\n" % datetime.date.today().isoformat())
        out.write("| data | redis-server | ferrodis | ratio | bytes per key (redis / ferrodis) |\n"
                  "| --- | ---: | ---: | ---: | ---: |\n")
        for title, rb, fb, ratio, ok, n in rows:
            out.write("| %s | %.1f MB | %.1f MB | %.2f%s | %d / %d |\n" % (
                title, rb / 1e6, fb / 1e6, ratio, "" if ok else " (load errors)",
                rb / n, fb / n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
