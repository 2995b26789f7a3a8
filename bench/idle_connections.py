"""Memory held by idle connections: ferrodis vs redis-server, side by side.

Opens N connections to each server (one PING each, so that every buffer has been used), then
reads the server's RSS after 1 s and again after 17 s: long enough for both servers' crons to
trim idle clients (Redis: the query buffer after 2 s idle) and for freed pages to go back to the
system. Usage: python3 bench/idle_connections.py [N]   (default 5000)
"""
import os
import resource
import socket
import subprocess
import sys
import time

FERRODIS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release",
                        "ferrodis-server")


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    resource.setrlimit(resource.RLIMIT_NOFILE, (2 * n + 10000, 2 * n + 10000))
    for kind, exe, port in (("redis", "redis-server", 7101), ("ferrodis", FERRODIS, 7102)):
        p = subprocess.Popen([exe, "--port", str(port), "--save", "", "--maxclients", str(2 * n)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        base = rss_kb(p.pid)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            s.recv(100)
        time.sleep(1)
        busy = rss_kb(p.pid)
        time.sleep(16)
        idle = rss_kb(p.pid)
        per = lambda kb: (kb - base) * 1024 / n
        print(f"{kind}: {n} connections, RSS {base} kB empty, {busy} kB after 1 s "
              f"({per(busy):.0f} B each), {idle} kB after 17 s ({per(idle):.0f} B each)", flush=True)
        for s in socks:
            s.close()
        p.kill()
        p.wait()


if __name__ == "__main__":
    main()
