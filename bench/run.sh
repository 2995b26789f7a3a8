#!/usr/bin/env bash
# Benchmark ferrodis against redis-server with redis-benchmark, and write bench/RESULTS.md.
#
# Both servers run on loopback with the same flags (no persistence). Runs are interleaved
# (redis, ferrodis, redis, ...) so that drift in machine load hits both alike, and each figure
# is the median over ROUNDS runs. Every knob is an environment variable:
#
#   ROUNDS=3              runs per (server, test, pipeline)
#   TESTS=set,get,...,evalsha redis-benchmark -t names, plus these rows of our own:
#                         publish1 / publish100  PUBLISH to a channel with 1 / 100 subscribers
#                         evalsha                EVALSHA of a small script (one redis.call)
#   PIPELINES="1 16"
#   CLIENTS=50
#   N_P1=200000           requests per run at -P 1   (size so that a run lasts ~2-3 s)
#   N_PIPE=2000000        requests per run at -P > 1
#   N_DIV_FANOUT=20       publish100 runs N/N_DIV_FANOUT requests (each is 100 messages)
#   KEYSPACE=100000       -r: random keys (0 = one key)
#   RESULTS=bench/RESULTS.md
#   SKIP_BUILD=1          use the existing target/release/ferrodis-server
#
# Usage, from anywhere: bench/run.sh   (short check: ROUNDS=1 N_P1=20000 N_PIPE=100000 bench/run.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-3}"
TESTS="${TESTS:-set,get,incr,mset,lpush,rpop,sadd,hset,spop,zadd,lrange_100,publish1,publish100,evalsha}"
PIPELINES="${PIPELINES:-1 16}"
CLIENTS="${CLIENTS:-50}"
N_P1="${N_P1:-200000}"
N_PIPE="${N_PIPE:-2000000}"
KEYSPACE="${KEYSPACE:-100000}"
N_DIV_FANOUT="${N_DIV_FANOUT:-20}"
RESULTS="${RESULTS:-$ROOT/bench/RESULTS.md}"

for tool in redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install redis-server redis-tools)" >&2; exit 2; }
done

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin ferrodis-server)
fi
FERRODIS="$ROOT/target/release/ferrodis-server"
[[ -x "$FERRODIS" ]] || { echo "bench: $FERRODIS missing" >&2; exit 2; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# A loopback port nobody listens on.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

wait_ready() {
    for _ in $(seq 1 200); do
        [[ "$(redis-cli -p "$1" ping 2>/dev/null)" == PONG ]] && return 0
        sleep 0.05
    done
    echo "bench: server on port $1 did not start" >&2
    exit 1
}

REDIS_PORT="$(free_port)"
mkdir -p "$WORK/redis" "$WORK/ferrodis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/redis" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_ready "$REDIS_PORT"
FERRODIS_PORT="$(free_port)"
"$FERRODIS" --port "$FERRODIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK/ferrodis" >"$WORK/ferrodis.log" 2>&1 &
PIDS+=($!)
wait_ready "$FERRODIS_PORT"

# Split TESTS into redis-benchmark's own tests and our custom rows.
STD_TESTS=""
CUSTOM=()
for t in ${TESTS//,/ }; do
    case "$t" in
        publish1 | publish100 | evalsha) CUSTOM+=("$t") ;;
        *) STD_TESTS="${STD_TESTS:+$STD_TESTS,}$t" ;;
    esac
done

# A small script for the evalsha row: one redis.call per run, like a typical helper script.
SCRIPT="return redis.call('INCR', 'evalsha:counter')"
SCRIPT_SHA=""
# Subscribers for the publish rows, on both servers; killed by PID in cleanup.
start_subscribers() {
    local port="$1" chan="$2" count="$3" ready="$WORK/sub.$1.$2"
    python3 "$ROOT/bench/subscribers.py" "$port" "$chan" "$count" >"$ready" &
    PIDS+=($!)
    for _ in $(seq 1 200); do
        [[ "$(cat "$ready")" == ready ]] && return 0
        sleep 0.05
    done
    echo "bench: subscribers on port $port did not start" >&2
    exit 1
}
for t in "${CUSTOM[@]}"; do
    for port in "$REDIS_PORT" "$FERRODIS_PORT"; do
        case "$t" in
            publish1) start_subscribers "$port" bench:ch1 1 ;;
            publish100) start_subscribers "$port" bench:ch100 100 ;;
            evalsha) SCRIPT_SHA="$(redis-cli -p "$port" script load "$SCRIPT")" ;;
        esac
    done
done

# One redis-benchmark run; appends "server test pipeline rps p99" lines to $WORK/raw.tsv.
bench_one() {
    local server="$1" port="$2" pipe="$3" n="$4" out
    redis-cli -p "$port" flushall >/dev/null
    out="$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$n" -P "$pipe" \
        -r "$KEYSPACE" -t "$STD_TESTS" --csv -q 2>&1)" || true
    parse_csv "$server" "$pipe" "" <<<"$out"
}

# One run of a custom row: redis-benchmark with an explicit command, reported as $label.
bench_custom() {
    local server="$1" port="$2" pipe="$3" n="$4" label="$5" out
    shift 5
    redis-cli -p "$port" flushall >/dev/null
    out="$(redis-benchmark -h 127.0.0.1 -p "$port" -c "$CLIENTS" -n "$n" -P "$pipe" \
        --csv -q "$@" 2>&1)" || true
    parse_csv "$server" "$pipe" "$label" <<<"$out"
}

# Appends the rows of redis-benchmark's --csv output on stdin to raw.tsv (named $3 if set).
parse_csv() {
    # --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    #        "p99_latency_ms","max_latency_ms"
    awk -F'","' -v s="$1" -v P="$2" -v label="$3" '
        NF >= 7 && $2 ~ /^[0-9.]+$/ {
            t = $1; gsub(/^"/, "", t); sub(/ .*/, "", t)
            if (label != "") t = label
            print s "\t" t "\t" P "\t" $2 "\t" $7
        }' >>"$WORK/raw.tsv"
}

: >"$WORK/raw.tsv"
for round in $(seq 1 "$ROUNDS"); do
    for pipe in $PIPELINES; do
        n="$N_P1"
        [[ "$pipe" != 1 ]] && n="$N_PIPE"
        echo "bench: round $round/$ROUNDS, -P $pipe, -n $n" >&2
        if [[ -n "$STD_TESTS" ]]; then
            bench_one redis "$REDIS_PORT" "$pipe" "$n"
            bench_one ferrodis "$FERRODIS_PORT" "$pipe" "$n"
        fi
        for t in "${CUSTOM[@]}"; do
            for s in redis ferrodis; do
                port="$REDIS_PORT"
                [[ "$s" == ferrodis ]] && port="$FERRODIS_PORT"
                case "$t" in
                    publish1) bench_custom "$s" "$port" "$pipe" "$n" PUBLISH_1_SUB \
                        PUBLISH bench:ch1 hello-subscriber ;;
                    publish100) bench_custom "$s" "$port" "$pipe" "$((n / N_DIV_FANOUT))" \
                        PUBLISH_100_SUBS PUBLISH bench:ch100 hello-subscriber ;;
                    evalsha) bench_custom "$s" "$port" "$pipe" "$n" EVALSHA \
                        EVALSHA "$SCRIPT_SHA" 0 ;;
                esac
            done
        done
    done
done

# Median of the numbers on stdin, "-" if none (the command failed on that server).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -F'\t' -v s="$1" -v t="$2" -v P="$3" -v c="$4" '$1 == s && $2 == t && $3 == P { print $c }' "$WORK/raw.tsv" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || a + 0 == 0) print "-"; else printf "%.2f", b / a }'; }

# Hand-written notes from the marker line on survive a re-run.
NOTES_MARK='<!-- Notes below this line are written by hand; the benchmark script keeps them when it rewrites the file. -->'
NOTES=""
if [[ -f "$RESULTS" ]]; then
    NOTES="$(awk -v m="$NOTES_MARK" 'index($0, m) == 1 { on = 1 } on' "$RESULTS")"
fi

{
    echo "# Benchmark: ferrodis vs redis-server"
    echo
    echo "Produced by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Medians of $ROUNDS"
    echo "interleaved runs per row; \`redis-benchmark -c $CLIENTS -r $KEYSPACE\`, \`-n $N_P1\` at"
    echo "\`-P 1\` and \`-n $N_PIPE\` otherwise; both servers on loopback without persistence."
    echo "Ratios are ferrodis / redis: above 1 means more requests per second, or a higher p99."
    echo "A \`-\` means the command failed on that server (not implemented)."
    echo
    echo "| test | pipeline | redis rps | ferrodis rps | rps ratio | redis p99 ms | ferrodis p99 ms | p99 ratio |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for t in $(cut -f2 "$WORK/raw.tsv" | awk '!seen[$0]++'); do
        for pipe in $PIPELINES; do
            rr="$(col redis "$t" "$pipe" 4)"; fr="$(col ferrodis "$t" "$pipe" 4)"
            rp="$(col redis "$t" "$pipe" 5)"; fp="$(col ferrodis "$t" "$pipe" 5)"
            echo "| $t | $pipe | $rr | $fr | $(ratio "$rr" "$fr") | $rp | $fp | $(ratio "$rp" "$fp") |"
        done
    done
    echo
    echo "## Machine"
    echo
    echo "- CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown), $(nproc) cores"
    echo "- Memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)"
    echo "- Kernel: $(uname -sr)"
    echo "- redis-server: $(redis-server --version | sed 's/ sha=.*//')"
    echo "- ferrodis: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
    if [[ -n "$NOTES" ]]; then
        echo
        echo "$NOTES"
    fi
} >"$RESULTS"
echo "bench: wrote $RESULTS" >&2
cat "$RESULTS"
