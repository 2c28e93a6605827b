#!/usr/bin/env bash
# tests/bench/compare.sh: rapport's relay and the automerge-repo JS sync
# server, side by side, with `rapport bench`; writes BENCHMARKS.md.
#
# Usage: tests/bench/compare.sh [--quick | --moderate | --full]
#          [--scenarios typing,typing-empty,idle-after-typing,cold-sync,ingest,idle,replica,live-replica,many-docs]
#          [--out FILE]
#
# For each scenario it starts a fresh server (our relay with tokens, as
# operators run it; our relay with --open, which shows the cost of
# authentication apart; the JS server, which has no tokens: the order
# rotates from one scenario to the next), runs the same `rapport bench`
# command against it, stops it, and keeps the --json result. Both listen on 127.0.0.1 only;
# every data folder is a temporary one, removed at the end. Each run has a
# time bound (`timeout`), and so does every wait. live-replica (a real
# rapport-client replica in live sync while LIVE_EDITORS type) runs against
# our relay with tokens only; idle-after-typing (LIVE_EDITORS type, then
# every peer leaves and the relay's memory is read after its idle period)
# against our relay alone, with tokens and without; many-docs starts our
# relay itself (with tokens): the JS server has no counterpart to these. An existing
# `## web app` section of FILE (tests/bench/web.sh --write) is kept.
#
# Sizes come from the profile and may be overridden one by one through the
# environment: EDITORS, EMPTY_EDITORS (typing-empty's; EDITORS but at --full),
# TYPING_SECONDS, TRACE_EDITS, RECORDS, PEERS,
# INGEST_SECONDS, CONNECTIONS, ECHOES, REPLICA_RECORDS, REPLICA_EDITS,
# LIVE_EDITORS, LIVE_SECONDS, MANY_DOCUMENTS, MANY_CHANGES, MANY_OPEN,
# MANY_CONNECTIONS, MANY_SECONDS. RESULTS_DIR=DIR keeps the --json results
# there (rerun `rapport bench report` on them to rewrite the tables).
#
# Needs: cargo, node >= 20 and npm (the JS server is installed with
# `npm ci` from tests/bench/js-server/package-lock.json), curl.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
profile=quick
scenarios="typing,typing-empty,idle-after-typing,cold-sync,ingest,idle,replica,live-replica,many-docs"
out="$root/BENCHMARKS.md"
command_line="tests/bench/compare.sh $*"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick | --moderate | --full) profile="${1#--}" ;;
    --scenarios) scenarios="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

case "$profile" in
  quick) # a few minutes
    : "${EDITORS:=2,8}" "${TYPING_SECONDS:=10}" "${TRACE_EDITS:=259778}"
    : "${RECORDS:=1000}" "${PEERS:=16}" "${INGEST_SECONDS:=5}"
    : "${CONNECTIONS:=2000}" "${ECHOES:=500}" "${REPLICA_RECORDS:=1000}" "${REPLICA_EDITS:=1000}"
    : "${LIVE_EDITORS:=16}" "${LIVE_SECONDS:=10}"
    : "${MANY_DOCUMENTS:=2000}" "${MANY_CHANGES:=20}" "${MANY_OPEN:=200}" "${MANY_CONNECTIONS:=50}" "${MANY_SECONDS:=10}" ;;
  moderate)
    : "${EDITORS:=2,4,8,16}" "${TYPING_SECONDS:=20}" "${TRACE_EDITS:=259778}"
    : "${RECORDS:=10000}" "${PEERS:=64}" "${INGEST_SECONDS:=10}"
    : "${CONNECTIONS:=10000}" "${ECHOES:=2000}" "${REPLICA_RECORDS:=10000}" "${REPLICA_EDITS:=5000}"
    : "${LIVE_EDITORS:=16}" "${LIVE_SECONDS:=20}"
    : "${MANY_DOCUMENTS:=10000}" "${MANY_CHANGES:=20}" "${MANY_OPEN:=1000}" "${MANY_CONNECTIONS:=250}" "${MANY_SECONDS:=20}" ;;
  full) # the issue's sizes
    : "${EDITORS:=2,4,8,16,32,64}" "${TYPING_SECONDS:=30}" "${TRACE_EDITS:=259778}"
    # No target on the empty document at 64: the sweep stops at 32 there.
    : "${EMPTY_EDITORS:=2,4,8,16,32}"
    : "${RECORDS:=10000}" "${PEERS:=128}" "${INGEST_SECONDS:=30}"
    : "${CONNECTIONS:=10000}" "${ECHOES:=5000}" "${REPLICA_RECORDS:=10000}" "${REPLICA_EDITS:=20000}"
    : "${LIVE_EDITORS:=16}" "${LIVE_SECONDS:=60}"
    : "${MANY_DOCUMENTS:=100000}" "${MANY_CHANGES:=20}" "${MANY_OPEN:=2000}" "${MANY_CONNECTIONS:=500}" "${MANY_SECONDS:=30}" ;;
esac
: "${EMPTY_EDITORS:=$EDITORS}"

work="$(mktemp -d "${TMPDIR:-/tmp}/rapport-compare.XXXXXX")"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    # A relay finishing a background compaction may take long to stop.
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

echo "== installing the JS sync server (npm ci)" >&2
(cd "$root/tests/bench/js-server" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2)
echo "== building release binaries" >&2
(cd "$root" && timeout 3000 cargo build --release -p rapport -p rapport-server >&2)
target="${CARGO_TARGET_DIR:-$root/target}"
rapport="$target/release/rapport"
relay="$target/release/rapport-server"

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server ours|ours-open|js EXTRA_RELAY_ARGS...: sets server_pid and url.
start_server() {
  local which="$1"; shift
  local port data
  port="$(free_port)"
  data="$work/data-$which-$RANDOM"
  mkdir -p "$data"
  if [ "$which" != js ]; then
    local open=()
    [ "$which" = ours-open ] && open=(--open)
    # RUST_LOG=warn: at the default `info`, every automerge load the relay
    # does (compaction) formats the whole change graph into a tracing span
    # (automerge 0.12's #[instrument] on load_changes); see docs/benchmarks.md.
    RUST_LOG=warn "$relay" --listen "127.0.0.1:$port" --data "$data" "${open[@]}" "$@" \
      >"$work/server-$which.log" 2>&1 &
    server_pid=$!
    url="ws://127.0.0.1:$port/sync"
    for _ in $(seq 100); do
      curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
      sleep 0.1
    done
  else
    node "$root/tests/bench/js-server/server.mjs" "$port" "$data" \
      >"$work/server-$which.log" 2>&1 &
    server_pid=$!
    url="ws://127.0.0.1:$port"
    for _ in $(seq 100); do
      grep -q LISTENING "$work/server-$which.log" 2>/dev/null && return 0
      sleep 0.1
    done
  fi
  echo "compare.sh: the $which server did not start; its log:" >&2
  cat "$work/server-$which.log" >&2
  exit 1
}

results=()
n=0
# run_pair SCENARIO BOUND_SECONDS RELAY_ARGS -- BENCH_ARGS...
run_pair() {
  local scenario="$1" bound="$2"; shift 2
  local relay_args=()
  while [ "$1" != "--" ]; do relay_args+=("$1"); shift; done
  shift
  local order=(ours ours-open js)
  case $((n % 3)) in
    1) order=(ours-open js ours) ;;
    2) order=(js ours ours-open) ;;
  esac
  n=$((n + 1))
  for which in "${order[@]}"; do
    local label=rapport open=(--open)
    case "$which" in
      ours) open=() ;;
      ours-open) label="rapport without tokens" ;;
      js) label="automerge-repo JS" ;;
    esac
    if [ "$which" = js ]; then start_server js; else start_server "$which" "${relay_args[@]}"; fi
    local file="$work/$(printf %02d "${#results[@]}")-$scenario-$which.json"
    echo "== $scenario against $label ($url)" >&2
    if timeout "$bound" "$rapport" --json bench "${scenario%-empty}" --relay "$url" "${open[@]}" \
        --relay-pid "$server_pid" --label "$label" "$@" >"$file"; then
      results+=("$file")
    else
      echo "compare.sh: $scenario against $label failed or passed its ${bound}s bound" >&2
    fi
    stop_server
  done
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
IFS=, read -r -a wanted <<<"$scenarios"
for scenario in "${wanted[@]}"; do
  case "$scenario" in
    typing)
      run_pair typing 3600 -- \
        --editors "$EDITORS" --seconds "$TYPING_SECONDS" --trace-edits "$TRACE_EDITS" ;;
    typing-empty)
      run_pair typing-empty 1800 -- --editors "$EMPTY_EDITORS" --seconds "$TYPING_SECONDS" --empty ;;
    cold-sync)
      run_pair cold-sync 3600 -- --records "$RECORDS" ;;
    ingest)
      run_pair ingest 900 -- --peers "$PEERS" --seconds "$INGEST_SECONDS" --fsync-dir "$work" ;;
    idle)
      run_pair idle 1800 -- --connections "$CONNECTIONS" --echoes "$ECHOES" ;;
    replica)
      echo "== replica" >&2
      file="$work/$(printf %02d "${#results[@]}")-replica.json"
      if timeout 3600 "$rapport" --json bench replica --records "$REPLICA_RECORDS" \
          --trace-edits "$REPLICA_EDITS" >"$file"; then
        results+=("$file")
      fi ;;
    live-replica)
      # Ours with tokens only; no observer beside the replica.
      start_server ours
      echo "== live-replica against rapport ($url)" >&2
      file="$work/$(printf %02d "${#results[@]}")-live-replica.json"
      if timeout 1800 "$rapport" --json bench live-replica --relay "$url" --relay-pid "$server_pid" \
          --label rapport --editors "$LIVE_EDITORS" --seconds "$LIVE_SECONDS" \
          --trace-edits "$TRACE_EDITS" --observers 0 >"$file"; then
        results+=("$file")
      else
        echo "compare.sh: live-replica failed or passed its 1800s bound" >&2
      fi
      stop_server ;;
    idle-after-typing)
      # Ours alone (the JS server keeps documents in memory): 16 editors on
      # the pre-grown document, then every peer leaves. The relay's idle
      # period is 5 s: 15 s later the document has left its memory. A run
      # of its own, so that the sweep above runs with the default period.
      for which in ours ours-open; do
        open=(--open) label="rapport without tokens"
        [ "$which" = ours ] && open=() label=rapport
        start_server "$which" --unload-idle-after-secs 5
        echo "== idle-after-typing against $label ($url)" >&2
        file="$work/$(printf %02d "${#results[@]}")-idle-after-typing-$which.json"
        if timeout 900 "$rapport" --json bench typing --relay "$url" "${open[@]}" \
            --relay-pid "$server_pid" --label "$label" --editors "$LIVE_EDITORS" \
            --seconds "$TYPING_SECONDS" --trace-edits "$TRACE_EDITS" --idle-seconds 15 >"$file"; then
          results+=("$file")
        else
          echo "compare.sh: idle-after-typing against $label failed or passed its 900s bound" >&2
        fi
        stop_server
      done ;;
    many-docs)
      # The bench starts (and restarts, and stops) our relay itself, with tokens.
      echo "== many-docs" >&2
      file="$work/$(printf %02d "${#results[@]}")-many-docs.json"
      if TMPDIR="$work" timeout 3600 "$rapport" --json bench many-docs --server "$relay" \
          --label rapport --documents "$MANY_DOCUMENTS" --changes "$MANY_CHANGES" \
          --open-documents "$MANY_OPEN" --connections "$MANY_CONNECTIONS" \
          --seconds "$MANY_SECONDS" >"$file"; then
        results+=("$file")
      else
        echo "compare.sh: many-docs failed or passed its 3600s bound" >&2
      fi ;;
    *) echo "compare.sh: unknown scenario $scenario" >&2; exit 2 ;;
  esac
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${RESULTS_DIR:-}" ]; then mkdir -p "$RESULTS_DIR" && cp "${results[@]}" "$RESULTS_DIR/"; fi

# The `## web app` section tests/bench/web.sh --write put in $out (up to
# the next `## ` heading) is kept, after the tables.
web="$work/web-section.md"
: >"$web"
if [ -f "$out" ]; then
  awk '/^## web app[[:space:]]*$/ { on = 1; print; next } on && /^## / { on = 0 } on' "$out" >"$web"
fi
"$rapport" bench report --command "$command_line" \
  --note "profile: $profile (EDITORS=$EDITORS EMPTY_EDITORS=$EMPTY_EDITORS TYPING_SECONDS=$TYPING_SECONDS TRACE_EDITS=$TRACE_EDITS RECORDS=$RECORDS PEERS=$PEERS INGEST_SECONDS=$INGEST_SECONDS CONNECTIONS=$CONNECTIONS ECHOES=$ECHOES REPLICA_RECORDS=$REPLICA_RECORDS REPLICA_EDITS=$REPLICA_EDITS LIVE_EDITORS=$LIVE_EDITORS LIVE_SECONDS=$LIVE_SECONDS MANY_DOCUMENTS=$MANY_DOCUMENTS MANY_CHANGES=$MANY_CHANGES MANY_OPEN=$MANY_OPEN MANY_CONNECTIONS=$MANY_CONNECTIONS MANY_SECONDS=$MANY_SECONDS)" \
  --note "load average (1, 5, 15 min) before: $load_before; after: $load_after; $(nproc) cores" \
  --out "$work/benchmarks.md" "${results[@]}"
if [ -s "$web" ]; then
  # web.sh's own section ends where it was written; trailing blank lines go.
  { cat "$work/benchmarks.md"; echo; sed -e ':a' -e '/^\n*$/{$d;N;ba' -e '}' "$web"; } >"$out"
  echo "== kept the web app section of $out" >&2
else
  cp "$work/benchmarks.md" "$out"
fi
echo "== wrote $out" >&2
