#!/usr/bin/env bash
# Server CPU time per request, ferrodis and redis-server side by side: the part of a
# benchmark that the client's own ceiling hides. Starts each server fresh on a free port,
# warms it with 200k requests, then reads the server's utime+stime from /proc around a
# redis-benchmark run.
#
# Usage: bench/cpu_per_request.sh [TEST] [PIPELINE] [REQUESTS]   (default: set 16 2000000)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
T="${1:-set}"; P="${2:-16}"; N="${3:-2000000}"
FERRODIS="$ROOT/target/release/ferrodis-server"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() {   # name port cmd...
    local name=$1 port=$2; shift 2
    "$@" --port "$port" --save '' >/dev/null 2>&1 &
    local pid=$!
    sleep 0.5
    redis-benchmark -p "$port" -c 50 -P "$P" -n 200000 -r 100000 -t "$T" -q >/dev/null 2>&1
    local a; a=$(ticks "$pid")
    local out; out=$(redis-benchmark -p "$port" -c 50 -P "$P" -n "$N" -r 100000 -t "$T" -q 2>&1 \
        | tr '\r' '\n' | grep -v '^$' | tail -1)
    local b; b=$(ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local hz; hz=$(getconf CLK_TCK)
    echo "$name $T -P $P: $(echo "scale=3; ($b - $a) * 1000000 / $hz / $N" | bc) us CPU/request; $out"
}

measure redis-server $((20000 + RANDOM % 10000)) redis-server --appendonly no
measure ferrodis $((30000 + RANDOM % 10000)) "$FERRODIS"
