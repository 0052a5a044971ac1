#!/usr/bin/env bash
# Instructions per unit of work, counted by callgrind: a repeatable number (same binary,
# same inputs → same count, whatever else the machine is doing), so it guards the hot paths
# where wall-clock benchmarks on a shared 2-core box cannot. Three scenarios:
#
#   proxy   (default) instructions per proxied request: GET of a 1 KiB file through a
#           `proxy` route, REQUESTS keep-alive requests on one connection;
#   accept  instructions per accepted job, whole life: `Prefer: respond-async` POSTs on a
#           `sync` route with the SQLite store (202 after fsync), the job then run against
#           an instant upstream and completed; REQUESTS POSTs on one connection, then
#           SETTLE seconds for the jobs to finish inside the measured window;
#   task    instructions per `Prefer: respond-async` submit on a `task` route: the POST
#           forwarded, the upstream's 202 passed back with `Preference-Applied` (the
#           proxy-vs-peers task scenario); REQUESTS POSTs on one connection;
#   poll    instructions per status poll: WAITERS `Prefer: wait=…` requests on a `task`
#           route whose task never finishes, polled every POLL_MS ms for WAIT seconds;
#           divided by the polls the upstream counted (its access log), so the waiters'
#           own cost (one request each) is spread over ~WAIT×1000/POLL_MS polls.
#
# The upstream is Debian nginx (1 KiB file, `return 200 '{}'`, a task stub). The release
# gateway runs under `valgrind --tool=callgrind`; a warm-up, then the counters are dumped
# and so zeroed (`callgrind_control -d`), the measured work runs, and they are dumped again.
# RUST_LOG defaults to info, the level a gateway runs at.
#
#   bench/callgrind.sh                        proxy, REQUESTS=2000 WARMUP=200
#   bench/callgrind.sh accept                 REQUESTS=1000 SETTLE=3
#   bench/callgrind.sh task                   REQUESTS=2000 WARMUP=200
#   bench/callgrind.sh poll                   WAITERS=20 WAIT=10 POLL_MS=100
#   MAX_IPR=60000 bench/callgrind.sh          exit 1 when instructions/unit exceed it
#
# Output: `instructions/<unit>: N` on the last line (and the top functions by inclusive
# cost in $OUT, default bench/results/callgrind-<scenario>-latest.txt, and the raw profile
# beside it as .out for `callgrind_annotate --tree=caller`; neither is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${1:-proxy}
case $SCENARIO in
  proxy) REQUESTS=${REQUESTS:-2000} ;;
  accept) REQUESTS=${REQUESTS:-1000} ;;
  task) REQUESTS=${REQUESTS:-2000} ;;
  poll) ;;
  *) echo "usage: bench/callgrind.sh [proxy|accept|task|poll]" >&2; exit 2 ;;
esac
WARMUP=${WARMUP:-200}
SETTLE=${SETTLE:-3}
WAITERS=${WAITERS:-20}
WAIT=${WAIT:-10}
POLL_MS=${POLL_MS:-100}
MAX_IPR=${MAX_IPR:-}
OUT=${OUT:-bench/results/callgrind-$SCENARIO-latest.txt}

command -v nginx >/dev/null && command -v valgrind >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq nginx valgrind; }
cargo build --release -q
gw_bin=${CARGO_TARGET_DIR:-$PWD/target}/release/prefer-gateway

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url: until it answers 200 (60 s: valgrind starts slowly)
  local i
  for i in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $1" >&2
  return 1
}

up_port=$(free_port)
mkdir -p "$work/up/www"
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/up/www/1k"
cat > "$work/up/nginx.conf" <<CONF
daemon off;
master_process on;
pid $work/up/nginx.pid;
error_log $work/up/err.log;
worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path $work/up/cb;
  proxy_temp_path $work/up/px;
  fastcgi_temp_path $work/up/fc;
  uwsgi_temp_path $work/up/uw;
  scgi_temp_path $work/up/sc;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$up_port;
    root $work/up/www;
    location = /ok { return 200 '{}'; }
    location = /v1/tasks { return 202 '{"taskId":"\$request_id","status":"pending"}'; }
    location /v1/tasks/ {
      access_log $work/up/polls.log;
      return 200 '{"taskId":"t-1","status":"running"}';
    }
  }
}
CONF
nginx -e "$work/up/err.log" -p "$work/up" -c "$work/up/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/1k"

gw_port=$(free_port)
case $SCENARIO in
  proxy) store=memory ;;
  accept) store="sqlite:$work/jobs.db" ;;
  task | poll) store=memory ;;
esac
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
[jobs]
store = "$store"
max_queued_per_tenant = 100000000
[[routes]]
name = "bench"
kind = "proxy"
methods = ["GET"]
path = "/{*rest}"
upstream = "http://127.0.0.1:$up_port"
[[routes]]
name = "accept"
kind = "sync"
methods = ["POST"]
path = "/ok"
upstream = "http://127.0.0.1:$up_port"
[[routes]]
name = "poll"
kind = "task"
methods = ["POST"]
path = "/v1/tasks"
upstream = "http://127.0.0.1:$up_port"
poll_interval = "${POLL_MS}ms"
[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
state = "/status"
TOML
RUST_LOG=${RUST_LOG:-info} valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$gw_bin" run --config "$work/gw.toml" >"$work/gw.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
wait_http "http://127.0.0.1:$gw_port/1k"

# curl reuses one connection for every URL of a glob, so these are keep-alive requests.
get_url="http://127.0.0.1:$gw_port/1k?i=[1-%d]"
post() { # n: n respond-async POSTs on one connection
  curl -sf -o /dev/null -X POST -H 'Prefer: respond-async' -H 'Content-Type: application/json' \
    -d '{"scene":1}' "http://127.0.0.1:$gw_port/ok?i=[1-$1]"
}
submit() { # n: n respond-async POSTs on the task route, one connection
  curl -sf -o /dev/null -X POST -H 'Prefer: respond-async' -H 'Content-Type: application/json' \
    -d '{}' "http://127.0.0.1:$gw_port/v1/tasks?i=[1-$1]"
}
waiters() { # n secs: n waiters at once, each holding wait=secs
  local i clients=()
  for i in $(seq "$1"); do
    curl -s -o /dev/null -X POST -H "Prefer: wait=$2" -d '{}' "http://127.0.0.1:$gw_port/v1/tasks" &
    clients+=($!)
  done
  wait "${clients[@]}" # only these: nginx and the gateway are background jobs too
}
case $SCENARIO in
  proxy) curl -sf "$(printf "$get_url" "$WARMUP")" >/dev/null ;;
  accept) post "$WARMUP"; sleep "$SETTLE" ;;
  task) submit "$WARMUP" ;;
  poll) waiters 2 2 ;;
esac
callgrind_control -d "$gw_pid" >/dev/null # dumps and zeroes: the next dump holds only what follows
: > "$work/up/polls.log"
case $SCENARIO in
  proxy) curl -sf "$(printf "$get_url" "$REQUESTS")" >/dev/null; units=$REQUESTS; unit=request ;;
  accept) post "$REQUESTS"; sleep "$SETTLE"; units=$REQUESTS; unit=job ;;
  task) submit "$REQUESTS"; units=$REQUESTS; unit=submit ;;
  poll) waiters "$WAITERS" "$WAIT"; units=$(wc -l < "$work/up/polls.log"); unit=poll ;;
esac
callgrind_control -d "$gw_pid" >/dev/null
sleep 1
# The last dump holds exactly the measured work (plus idle timer ticks).
dump=$(ls -t "$work"/cg.out.* 2>/dev/null | head -1)
[ -n "$dump" ] || { echo "no callgrind dump" >&2; exit 1; }
[ "$units" -gt 0 ] || { echo "no $unit measured" >&2; exit 1; }
total=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
ipr=$((total / units))
mkdir -p "$(dirname "$OUT")"
cp "$dump" "${OUT%.txt}.out"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -80 > "$OUT" || true
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes')"
case $SCENARIO in
  proxy) echo "requests: $REQUESTS (after $WARMUP warm-up), one keep-alive connection, RUST_LOG=${RUST_LOG:-info}" ;;
  accept) echo "jobs: $REQUESTS accepted on one connection (after $WARMUP), SQLite, each run and completed within ${SETTLE} s, RUST_LOG=${RUST_LOG:-info}" ;;
  task) echo "submits: $REQUESTS respond-async POSTs (after $WARMUP warm-up), one keep-alive connection, RUST_LOG=${RUST_LOG:-info}" ;;
  poll) echo "polls: $units by $WAITERS waiters over ${WAIT} s every ${POLL_MS} ms, RUST_LOG=${RUST_LOG:-info}" ;;
esac
echo "instructions: $total"
echo "instructions/$unit: $ipr"
if [ -n "$MAX_IPR" ] && [ "$ipr" -gt "$MAX_IPR" ]; then
  echo "FAIL: $ipr instructions/$unit > MAX_IPR=$MAX_IPR" >&2
  exit 1
fi
