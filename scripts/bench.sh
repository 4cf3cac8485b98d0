#!/usr/bin/env bash
# Runs every confab-load scenario three times against a fresh release build
# of the server on 127.0.0.1, and writes one JSON file per run plus a table
# of medians. Usage: scripts/bench.sh [RESULTS_DIR]
#
# Settings (environment variables):
#   BENCH_DURATION   measured phase of each run (default 10s)
#   BENCH_WARMUP     warm-up before each measured phase (default 3s)
#   BENCH_RUNS       runs per scenario (default 3)
#   BENCH_SOCKETS    WebSockets for the sockets scenario (default 50000,
#                    lowered to fit the open-file hard limit)
#   BENCH_SCENARIOS  space-separated subset of: me post page login-storm
#                    login-storm-200 sockets fanout-latency fanout-throughput
#                    criterion (default: all)
#   BENCH_SERVER_BIN server binary to measure instead of this tree's
#                    release build (for example one built from another branch)
#   BENCH_NO_BUILD   set to 1 to skip `cargo build --release` and use the
#                    binaries already in target/release (or BENCH_SERVER_BIN)
#   BENCH_POSTGRES_URL  when set, the post scenario runs a second time with
#                    the server on this PostgreSQL database (use a scratch one)
set -euo pipefail

cd "$(dirname "$0")/.."
results=${1:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-3s}
runs=${BENCH_RUNS:-3}
sockets=${BENCH_SOCKETS:-50000}
scenarios=${BENCH_SCENARIOS:-"me post page login-storm login-storm-200 sockets fanout-latency fanout-throughput criterion"}
mkdir -p "$results"

if [[ ${BENCH_NO_BUILD:-} != 1 ]]; then
    cargo build --release --workspace
fi
server_bin=${BENCH_SERVER_BIN:-$PWD/target/release/confab}
load_bin=$PWD/target/release/confab-load

# Each socket holds one file in the server and one in confab-load. Raising
# the hard limit needs root (CAP_SYS_RESOURCE); without it, fit the count
# under the limit this shell has.
ulimit -n $((sockets + 2000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
limit=$(ulimit -n)
if ((sockets + 1000 > limit)); then
    sockets=$((limit - 1000))
    echo "bench: the open-file limit is $limit; the sockets scenario opens $sockets sockets" >&2
fi

data_dir=$(mktemp -d)
server_pid=
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    rm -rf "$data_dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a server with an empty database; $1 is an optional DATABASE_URL.
start_server() {
    stop_server
    rm -rf "$data_dir"/*
    port=$(free_port)
    # The default limits (60 /auth requests a minute and 10 registrations an
    # hour per address, 16 WebSockets per user) would answer most of the load
    # with 429, since every request comes from 127.0.0.1 and the sockets
    # scenario shares a few users' tokens.
    env CONFAB_ADDR="127.0.0.1:$port" CONFAB_DATA_DIR="$data_dir" CONFAB_LOG=warn \
        CONFAB_AUTH_REQUESTS_PER_MINUTE=1000000000 CONFAB_REGISTRATIONS_PER_HOUR=1000000000 \
        CONFAB_LOGIN_MAX_FAILURES=1000000000 CONFAB_WS_MAX_SOCKETS_PER_USER=1000000 \
        ${1:+DATABASE_URL="$1"} "$server_bin" >>"$results/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            return
        fi
        sleep 0.1
    done
    echo "bench: the server did not start; see $results/server.log" >&2
    exit 1
}

# Runs one scenario $runs times on a fresh server: run NAME [DATABASE_URL] -- ARGS...
run() {
    local name=$1 url=
    shift
    if [[ $1 != -- ]]; then
        url=$1
        shift
    fi
    shift
    for i in $(seq "$runs"); do
        # A fresh server per run: a process that already held sockets reuses
        # the freed memory, and its next run would read close to zero bytes
        # per socket.
        start_server "$url"
        echo "bench: $name run $i of $runs" >&2
        # A failed run (for example a server without the chat API) is
        # reported and skipped, so the other scenarios still run.
        if ! "$load_bin" --addr "127.0.0.1:$port" --server-pid "$server_pid" \
            --duration "$duration" --warmup "$warmup" \
            --json "$results/$name-$i.json" "$@" >>"$results/summary.txt"; then
            echo "bench: $name run $i failed" | tee -a "$results/summary.txt" >&2
            break
        fi
        # The machine may be shared, so each run records the load average it ran under.
        echo "bench: $name run $i load: $(uptime)" >>"$results/summary.txt"
        tail -n 2 "$results/summary.txt"
        stop_server
    done
}

for scenario in $scenarios; do
    case $scenario in
    me) run me -- http --endpoint me --baseline healthz --connections 64 ;;
    post)
        run post-sqlite -- http --endpoint post --baseline healthz --connections 64
        if [[ -n ${BENCH_POSTGRES_URL:-} ]]; then
            run post-postgres "$BENCH_POSTGRES_URL" -- http --endpoint post --baseline healthz --connections 64
        fi
        ;;
    page) run page -- http --endpoint page --baseline healthz --connections 64 ;;
    login-storm) run login-storm -- login-storm --rate 80 ;;
    login-storm-200) run login-storm-200 -- login-storm --rate 200 ;;
    sockets) run sockets -- sockets --count "$sockets" ;;
    fanout-latency) run fanout-latency -- fanout --members 1000 --rate 10 ;;
    fanout-throughput) run fanout-throughput -- fanout --members 1000 --rate 200 ;;
    criterion)
        # Criterion keeps its own statistics; its summary lines go to the log.
        cargo bench --bench auth --bench chat 2>&1 | tee "$results/criterion.txt" |
            grep -B1 -E 'time:' || true
        ;;
    *)
        echo "bench: unknown scenario $scenario" >&2
        exit 2
        ;;
    esac
done

python3 scripts/bench_medians.py "$results" | tee "$results/medians.md"
