#!/usr/bin/env bash
# Jobs accepted per second: `Prefer: respond-async` with a small body against a `sync`
# route, measured with wrk against a release build. The upstream is an instant one (Debian
# nginx, one worker, `return 200 '{}'`), so the jobs that run in the background while the
# load runs cost as little as they can and the figure is the accept path's.
#
#   bench/jobs-accept.sh [connections] [seconds] [store]      store: sqlite | redis | memory
#   REDIS_FSYNC=everysec bench/jobs-accept.sh 16 10 redis      (default: always)
#   WORKER_THREADS=0 bench/jobs-accept.sh                     server.worker_threads (unset: one
#                                                              per-core runtime per CPU)
#   FSYNCS=1 bench/jobs-accept.sh 32 5 sqlite                  also count fsync/fdatasync
#                                                              calls per accepted job (strace;
#                                                              a second, slower run)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-16}; secs=${2:-10}; store_kind=${3:-sqlite}
command -v wrk >/dev/null && command -v nginx >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq wrk nginx; }
cargo build --release -q
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

up_port=$(free_port)
mkdir -p "$work/up"
cat > "$work/up/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/up/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/up;
  server {
    listen 127.0.0.1:$up_port;
    location / { return 200 '{}'; }
  }
}
NGINX
nginx -e "$work/up/err.log" -p "$work/up" -c "$work/up/nginx.conf" &
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$up_port/" && break; sleep 0.1; done
echo "$up_port" > "$work/up.port"
case "$store_kind" in
  sqlite) store="sqlite:$work/jobs.db" ;;
  redis)
    # A private redis-server with the durable setting (every write fsynced before the 202).
    command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --save "" \
      --appendonly yes --appendfsync "${REDIS_FSYNC:-always}" --daemonize no >/dev/null &
    redis_pid=$!
    for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
    store="redis://127.0.0.1:$rport/0" ;;
  *) store="$store_kind" ;;
esac
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:0"
${WORKER_THREADS:+worker_threads = $WORKER_THREADS}
[jobs]
store = "$store"
max_queued_per_tenant = 100000000
[[routes]]
name = "render"
kind = "sync"
methods = ["POST"]
path = "/v1/render"
upstream = "http://127.0.0.1:$(cat "$work/up.port")"
TOML
RUST_LOG=warn,prefer_gateway=info ./target/release/prefer-gateway run --config "$work/gw.toml" 2> "$work/gw.log" &
gw_pid=$!
for _ in $(seq 100); do grep -q "addr=" "$work/gw.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*addr=\([0-9.:]*\).*/\1/p' "$work/gw.log" | head -1)
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"scene":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
LUA
echo "store=$store_kind connections=$conns duration=${secs}s"
# Where the two cores go during the run (utime + stime over it, as % of one core), and on
# Redis the commands each accepted job cost (INFO commandstats): what bounds the rate.
ticks() { local p t=0 u s; for p in "$@"; do read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat"); t=$((t + u + s)); done; echo "$t"; }
up_pids=$(cat "$work/up/nginx.pid" 2>/dev/null; pgrep -P "$(cat "$work/up/nginx.pid" 2>/dev/null || echo 1)" 2>/dev/null || true)
[[ -n ${rport:-} ]] && redis-cli -p "$rport" config resetstat >/dev/null
g0=$(ticks "$gw_pid"); u0=$(ticks $up_pids); r0=$( [[ -n ${redis_pid:-} ]] && ticks "$redis_pid" || echo 0)
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "http://$addr/v1/render" | tee "$work/wrk1.txt"
g1=$(ticks "$gw_pid"); u1=$(ticks $up_pids); r1=$( [[ -n ${redis_pid:-} ]] && ticks "$redis_pid" || echo 0)
hz=$(getconf CLK_TCK)
pct() { awk -v t="$1" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.0f %%", t / hz / s * 100 }'; }
echo "CPU over the run (of one core): gateway $(pct $((g1 - g0))), upstream nginx $(pct $((u1 - u0)))$( [[ -n ${redis_pid:-} ]] && echo ", redis-server $(pct $((r1 - r0)))"); the rest is wrk and the kernel's"
if [[ -n ${rport:-} ]]; then
  jobs_done=$(awk '/requests in/ {print $1}' "$work/wrk1.txt")
  redis-cli -p "$rport" info commandstats | tr -d '\r' | awk -F'[:=,]' -v n="$jobs_done" '
    /^cmdstat_/ { c[substr($1, 9)] = $3; total += $3 }
    END { printf "Redis commands per accepted job: %.2f (", total / n; sep = "";
          for (k in c) { printf "%s%s %.2f", sep, k, c[k] / n; sep = ", " } print ")" }'
fi
if [[ ${FSYNCS:-0} == 1 ]]; then
  # A second run under strace: how many fsync/fdatasync calls the gateway made per
  # accepted job (group commit: well under one). strace slows the gateway, so this run's
  # rate is not the figure above.
  command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
  strace -f -c -e trace=fsync,fdatasync -o "$work/strace.txt" -p "$gw_pid" &
  st=$!; sleep 1
  wrk -t2 -c"$conns" -d"${secs}s" -s "$work/post.lua" "http://$addr/v1/render" > "$work/wrk2.txt"
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' "$work/wrk2.txt")
  calls=$(awk '$NF ~ /^f(data)?sync$/ {n += $4} END {print n + 0}' "$work/strace.txt")
  echo "under strace: $reqs jobs accepted, $calls fsync/fdatasync calls ($(python3 -c "print(f'{$calls/max($reqs,1):.3f}')") per job)"
fi
