#!/usr/bin/env python3
"""Pub/Sub load for bench/run.sh: N connections SUBSCRIBE to a channel, then read and discard.

Usage: subscribers.py PORT CHANNEL COUNT

Prints "ready" once every connection has its subscribe confirmation, then drains all sockets
until killed. One process with big reads is used instead of COUNT redis-cli processes because
on a 2-core machine the subscribers' own CPU would otherwise decide the PUBLISH figures.
"""
import selectors
import socket
import sys


def main():
    port, channel, count = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
    sel = selectors.DefaultSelector()
    cmd = b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(channel), channel)
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(cmd)
        socks.append(s)
    for s in socks:
        # The confirmation is a 3-element array ending in ":1\r\n"; wait for it so that the
        # benchmark starts with every subscriber in place.
        got = b""
        while not got.endswith(b":1\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("subscriber: connection closed")
            got += chunk
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            try:
                if not key.fileobj.recv(1 << 20):
                    sel.unregister(key.fileobj)
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main()
