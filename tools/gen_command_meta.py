#!/usr/bin/env python3
"""Generates src/commands/command_meta.rs from a running Redis 7.0 server.

Usage: tools/gen_command_meta.py [port] > src/commands/command_meta.rs

Talks RESP3 to the server (so simple strings, maps and sets keep their types), asks
COMMAND INFO and COMMAND DOCS for every command, and writes the replies as static Rust data.
The runtime renders them for either protocol, so one table serves RESP2 and RESP3 clients.
The only fact not visible through the protocol, whether a command has a key-extraction
function besides its key specs, is read from Redis's command JSON files when
REDIS_SRC (default /work/redis-src) is present.
"""
import glob
import json
import os
import socket
import sys

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
REDIS_SRC = os.environ.get("REDIS_SRC", "/work/redis-src")


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()[:-2]
        t, rest = chr(line[0]), line[1:]
        if t == "+":
            return ("simple", rest.decode())
        if t == "-":
            raise RuntimeError(rest.decode())
        if t == ":":
            return ("int", int(rest))
        if t == "$":
            n = int(rest)
            data = self.f.read(n + 2)[:-2]
            return ("bulk", data.decode())
        if t == "_":
            return ("null", None)
        if t in "*~>":
            kind = {"*": "arr", "~": "set", ">": "arr"}[t]
            return (kind, [self.read() for _ in range(int(rest))])
        if t == "%":
            items = []
            for _ in range(int(rest)):
                items.append(self.read())
                items.append(self.read())
            return ("map", items)
        raise RuntimeError("unexpected reply type " + t)


def rust_str(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def node(n):
    kind, v = n
    if kind == "simple":
        return "S(%s)" % rust_str(v)
    if kind == "bulk":
        return "B(%s)" % rust_str(v)
    if kind == "int":
        return "I(%d)" % v
    if kind == "null":
        return "Null"
    inner = ", ".join(node(x) for x in v)
    tag = {"arr": "A", "set": "Set", "map": "M"}[kind]
    return "%s(&[%s])" % (tag, inner)


def as_map(n):
    kind, v = n
    assert kind == "map", n
    return {v[i][1]: v[i + 1] for i in range(0, len(v), 2)}


def key_spec(n):
    m = as_map(n)
    flags = [f[1] for f in m["flags"][1]]
    bs = as_map(m["begin_search"])
    bspec = as_map(bs["spec"]) if bs["spec"][0] == "map" else {}
    if bs["type"][1] == "index":
        begin = "Begin::Index(%d)" % bspec["index"][1]
    elif bs["type"][1] == "keyword":
        begin = "Begin::Keyword(%s, %d)" % (rust_str(bspec["keyword"][1]), bspec["startfrom"][1])
    else:
        begin = "Begin::Unknown"
    fk = as_map(m["find_keys"])
    fspec = as_map(fk["spec"]) if fk["spec"][0] == "map" else {}
    if fk["type"][1] == "range":
        find = "Find::Range { lastkey: %d, step: %d, limit: %d }" % (
            fspec["lastkey"][1], fspec["keystep"][1], fspec["limit"][1])
    elif fk["type"][1] == "keynum":
        find = "Find::Keynum { idx: %d, first: %d, step: %d }" % (
            fspec["keynumidx"][1], fspec["firstkey"][1], fspec["keystep"][1])
    else:
        find = "Find::Unknown"
    fl = ", ".join(rust_str(f) for f in flags)
    return "KeySpec { flags: &[%s], begin: %s, find: %s }" % (fl, begin, find)


def getkeys_functions():
    names = set()
    for path in glob.glob(os.path.join(REDIS_SRC, "src/commands/*.json")):
        with open(path) as f:
            data = json.load(f)
        for name, body in data.items():
            if "get_keys_function" in body:
                full = name.lower()
                if "container" in body:
                    full = body["container"].lower() + "|" + full
                names.add(full)
    return names


def emit_cmd(info, docs, procs, indent):
    kind, fields = info
    name = fields[0][1]
    flags = [f[1] for f in fields[2][1]]
    acl = [c[1] for c in fields[6][1]]
    specs = [key_spec(s) for s in fields[8][1]]
    subs = sorted(fields[9][1], key=lambda s: s[1][0][1])
    doc_map = docs.get(name)
    doc_items = []
    sub_docs = {}
    if doc_map is not None:
        dv = doc_map[1]
        for i in range(0, len(dv), 2):
            if dv[i][1] == "subcommands":
                sub_docs = as_map(dv[i + 1])
            else:
                doc_items += [dv[i], dv[i + 1]]
    pad = " " * indent
    out = [pad + "CmdMeta {"]
    out.append(pad + "    name: %s," % rust_str(name))
    out.append(pad + "    arity: %d," % fields[1][1])
    out.append(pad + "    flags: &[%s]," % ", ".join(rust_str(f) for f in flags))
    out.append(pad + "    first: %d, last: %d, step: %d," % (
        fields[3][1], fields[4][1], fields[5][1]))
    out.append(pad + "    acl: &[%s]," % ", ".join(rust_str(c) for c in acl))
    out.append(pad + "    key_specs: &[%s]," % ", ".join(specs))
    out.append(pad + "    getkeys_proc: %s," % ("true" if name in procs else "false"))
    out.append(pad + "    info: &[%s]," % ", ".join(node(f) for f in fields[:9]))
    out.append(pad + "    docs: &[%s]," % ", ".join(node(d) for d in doc_items))
    out.append(pad + "    subcommands: &[")
    for s in subs:
        out.append(emit_cmd(s, sub_docs, procs, indent + 8) + ",")
    out.append(pad + "    ],")
    out.append(pad + "}")
    return "\n".join(out)


def main():
    c = Conn(PORT)
    c.cmd("HELLO", "3")
    infos = c.cmd("COMMAND", "INFO")
    docs = as_map(c.cmd("COMMAND", "DOCS"))
    # COMMAND INFO without names returns every command (Redis 7.0).
    entries = sorted(infos[1], key=lambda e: e[1][0][1])
    procs = getkeys_functions()
    print("//! Redis 7.0 command metadata (COMMAND INFO / COMMAND DOCS), generated by")
    print("//! `tools/gen_command_meta.py` from a running Redis 7.0.15. Do not edit by hand.")
    print("//!")
    print("//! Sorted by name; subcommands sorted by full name.")
    print()
    print("#![allow(clippy::all)]")
    print("use super::{Begin, CmdMeta, Find, KeySpec, N::*};")
    print()
    print("pub static META: &[CmdMeta] = &[")
    for e in entries:
        print(emit_cmd(e, docs, procs, 4) + ",")
    print("];")


if __name__ == "__main__":
    main()
