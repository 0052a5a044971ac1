#!/usr/bin/env bash
# A/B of where client connections are served: one gateway build run twice side by side —
# per-core runtimes (`server.worker_threads` unset: one per CPU) and the main work-stealing
# runtime (`worker_threads = 0`) — with Debian nginx as a reverse proxy beside them, all in
# front of one upstream nginx (1 KiB file, `POST /v1/tasks` → 202). wrk runs interleave
# (cores, main, nginx; ROUNDS times) so a noisy neighbour hits all three alike.
#
#   bench/cores-ab.sh                      SECS=5 ROUNDS=4 CONNS=64, GET /1k
#   SCENARIO=task bench/cores-ab.sh        POST /v1/tasks with Prefer: respond-async
#   CONNS=1 bench/cores-ab.sh              one connection (latency-bound)
#
# Prints every run (req/s, CPU µs per request = utime+stime of the proxy's processes over
# the run ÷ requests) and the medians. The release binary is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-4}
CONNS=${CONNS:-64}
SCENARIO=${SCENARIO:-proxy}
command -v nginx >/dev/null && command -v wrk >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq nginx wrk; }
cargo build --release -q
gw_bin=${CARGO_TARGET_DIR:-$PWD/target}/release/prefer-gateway

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url
  local i
  for i in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}
temp_paths() { # dir: nginx's temp paths under dir
  local d
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $1/$d;"; done
}

up=$(free_port) px=$(free_port) g1=$(free_port) g0=$(free_port)
mkdir -p "$work/www" "$work/up" "$work/px"
head -c 1024 /dev/zero | tr '\0' x >"$work/www/1k"
cat >"$work/up/nginx.conf" <<CONF
daemon off; master_process off; pid $work/up/pid; error_log $work/up/err.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
$(temp_paths "$work/up")
  server { listen 127.0.0.1:$up; root $work/www;
    location = /v1/tasks { return 202 '{"taskId":"t-1","status":"pending"}'; } }
}
CONF
cat >"$work/px/nginx.conf" <<CONF
daemon off; pid $work/px/pid; error_log $work/px/err.log; worker_processes $(nproc);
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000;
$(temp_paths "$work/px")
  upstream up { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$px;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
gw_config() { # port extra-server-line
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
$2
[jobs]
store = "memory"
[[routes]]
name = "tasks"
kind = "task"
methods = ["POST"]
path = "/v1/tasks"
upstream = "http://127.0.0.1:$up"
[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
state = "/status"
[[routes]]
name = "bench"
kind = "proxy"
methods = ["GET"]
path = "/{*rest}"
upstream = "http://127.0.0.1:$up"
TOML
}
gw_config "$g1" "" >"$work/g1.toml"
gw_config "$g0" "worker_threads = 0" >"$work/g0.toml"
nginx -p "$work/up" -c "$work/up/nginx.conf" &
pids+=($!)
nginx -p "$work/px" -c "$work/px/nginx.conf" &
pids+=($!)
RUST_LOG=warn "$gw_bin" run --config "$work/g1.toml" >"$work/g1.log" 2>&1 &
gw1=$!
pids+=("$gw1")
RUST_LOG=warn "$gw_bin" run --config "$work/g0.toml" >"$work/g0.log" 2>&1 &
gw0=$!
pids+=("$gw0")
for p in "$up" "$px" "$g1" "$g0"; do wait_http "http://127.0.0.1:$p/1k"; done
px_pids=$(pgrep -P "$(cat "$work/px/pid")" | tr '\n' ' ')

cat >"$work/task.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
LUA
case $SCENARIO in
  proxy) path=/1k lua=() ;;
  task) path=/v1/tasks lua=(-s "$work/task.lua") ;;
  *) echo "SCENARIO is proxy or task" >&2; exit 2 ;;
esac
threads=$((CONNS < 2 ? 1 : 2))
ticks() { # pids: utime+stime summed
  local p t=0 u s
  for p in "$@"; do
    read -r u s < <(awk '{print $14, $15}' "/proc/$p/stat")
    t=$((t + u + s))
  done
  echo "$t"
}
run() { # name port pids…
  local name=$1 port=$2
  shift 2
  local c0 c1 out n rps
  c0=$(ticks "$@")
  out=$(wrk -t"$threads" -c"$CONNS" -d"${SECS}s" "${lua[@]}" "http://127.0.0.1:$port$path")
  c1=$(ticks "$@")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  awk -v name="$name" -v rps="$rps" -v c=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%-6s %10.0f req/s %7.1f CPU-µs/req\n", name, rps, c / hz * 1e6 / n }' | tee -a "$work/runs"
}
# shellcheck disable=SC2086 # px_pids is a list
run warmup "$g1" "$gw1" >/dev/null; run warmup "$g0" "$gw0" >/dev/null; run warmup "$px" $px_pids >/dev/null
: >"$work/runs"
echo "scenario $SCENARIO, wrk -t$threads -c$CONNS -d${SECS}s, $ROUNDS rounds, commit $(git rev-parse --short HEAD)"
for _ in $(seq "$ROUNDS"); do
  run cores "$g1" "$gw1"
  run main "$g0" "$gw0"
  # shellcheck disable=SC2086
  run nginx "$px" $px_pids
done
echo "medians (the lower middle run for an even ROUNDS):"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for name in cores main nginx; do
  r=$(awk -v n="$name" '$1 == n { print $2 }' "$work/runs" | median)
  c=$(awk -v n="$name" '$1 == n { print $4 }' "$work/runs" | median)
  printf "%-6s %10s req/s %7s CPU-µs/req\n" "$name" "$r" "$c"
done
