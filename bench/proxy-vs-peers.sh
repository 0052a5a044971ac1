#!/usr/bin/env bash
# What prefer-gateway costs in front of a backend, next to its peers — nginx and HAProxy —
# doing the same job on the same machine in the same run.
#
# Upstream: Debian nginx (1 worker) serving a static 1 KiB file on loopback over HTTP/1.1
# (plus an h2c listener, only for the `direct` row of the HTTP/2 table). Targets:
#   direct  — the load generator straight at the upstream: the ceiling, and the baseline
#             for added latency
#   nginx   — Debian nginx as a reverse proxy (workers = nproc, keepalive 64, HTTP/1.1)
#   haproxy — Debian HAProxy (nbthread = nproc, http-reuse always, no logging, HTTP/1.1)
#   gateway — prefer-gateway (release build): `proxy` route GET /{*rest}, `task` route
# Every proxy talks HTTP/1.1 keep-alive to the upstream, whatever the client speaks.
# Scenarios, each run against every target per round:
#   c64  wrk -t2 -c$CONNS GET /1k
#   c1   wrk -t1 -c1 GET /1k                       (added latency = target − direct)
#   task wrk -t2 -c$CONNS POST /v1/tasks with `Prefer: respond-async`; the upstream's task
#        stub answers 202 (the peers proxy it as is, the gateway resolves the preference)
#   h2   h2load -c$H2_CONNS -m$H2_STREAMS GET /1k over cleartext HTTP/2 (prior knowledge),
#        in its own rounds after the HTTP/1.1 ones (H2=0 skips it)
# The target order changes every round (a balanced Latin square, see `round_order`); the
# tables report medians over rounds and each peer's ratios. CPU is utime+stime of the proxy's
# processes from /proc/<pid>/stat; peak RSS is VmHWM from /proc/<pid>/status, reset before
# each run. PEERS picks the peers (default "nginx haproxy"; direct and gateway always run).
# OHA=1 adds oha at $CONNS connections and a fixed-rate pass (RATE req/s, --latency-correction).
#
#   bench/proxy-vs-peers.sh                      DURATION=10 ROUNDS=3 by default
#   DURATION=5 ROUNDS=1 bench/proxy-vs-peers.sh  quick look
#   PEERS=haproxy H2=0 bench/proxy-vs-peers.sh   HAProxy only, no HTTP/2
#   OHA=1 bench/proxy-vs-peers.sh                also oha (cargo install oha)
#
# (It was proxy-vs-nginx.sh before HAProxy and HTTP/2 joined; the older results keep that name.)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2}
PEERS=${PEERS-nginx haproxy} # which peers to run; empty = gateway vs direct only
H2=${H2:-1}                  # 0 skips the HTTP/2 scenario
H2_CONNS=${H2_CONNS:-$CONNS}
H2_STREAMS=${H2_STREAMS:-10} # concurrent streams per h2 connection (h2load -m)
OHA=${OHA:-0}
RATE=${RATE:-5000} # oha's fixed-rate pass, requests per second
NPROC=$(nproc)
TICK=$(getconf CLK_TCK)

read -ra peers <<< "$PEERS"
for p in "${peers[@]}"; do
  case $p in nginx | haproxy) ;; *) echo "PEERS: unknown peer '$p' (nginx, haproxy)" >&2; exit 2 ;; esac
done
has_peer() { [[ " ${peers[*]} " == *" $1 "* ]]; }
# direct first, gateway last: the order only matters for round 1's layout, see round_order.
targets=(direct "${peers[@]}" gateway)

# nginx is always needed (it is the upstream); the rest only when measured.
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
has_peer haproxy && ! command -v haproxy >/dev/null && need+=(haproxy)
[ "$H2" = 1 ] && ! command -v h2load >/dev/null && need+=(nghttp2-client)
if [ "${#need[@]}" -gt 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}"; fi
if [ "$OHA" = 1 ] && ! command -v oha >/dev/null; then
  cargo install oha --locked
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --release -q
gw_bin=${CARGO_TARGET_DIR:-target}/release/prefer-gateway

work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody and read the 1 KiB file from here
pids=()           # servers, stopped on exit
load_pid=""       # the load generator running now, if any
cleanup() {
  local p
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$load_pid" ]; then wait "$load_pid" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs a load generator in the background and waits for it: bash defers a trap until a
# foreground command ends, but `wait` returns at once on a signal, so Ctrl-C stops the
# script now (and cleanup kills the generator) rather than after the run's DURATION.
run_load() { # out-file command… (stdout to out-file, which oha fills with JSON; stderr beside it)
  local out=$1 rc=0
  shift
  "$@" > "$out" 2> "$out.err" &
  load_pid=$!
  wait "$load_pid" || rc=$?
  load_pid=""
  if [ "$rc" != 0 ]; then echo "failed ($rc): $*" >&2; cat "$out" "$out.err" >&2; return "$rc"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url [curl options…]: until it answers 200 (10 s)
  local url=$1
  shift
  for _ in $(seq 100); do
    [ "$(curl -s "$@" -o /dev/null -w '%{http_code}' "$url" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $url" >&2
  return 1
}

# --- upstream: nginx, 1 worker, static 1 KiB body ---------------------------------------
up_port=$(free_port)
up_h2_port=$(free_port)
mkdir -p "$work/up/www" "$work/px" "$work/hx"
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/up/www/1k"
nginx_common() { # dir
  cat <<CONF
daemon off;
master_process on;
pid $1/nginx.pid;
error_log $1/err.log;
CONF
}
nginx_http_common() { # dir
  cat <<CONF
  access_log off;
  default_type application/octet-stream;
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  # Also caps requests per HTTP/2 connection (since 1.19.7); the default 1000 would make
  # the load generators reconnect every 1000 requests.
  keepalive_requests 1000000;
CONF
}
up_h2_server=""
if [ "$H2" = 1 ]; then
  # h2c on its own port: an `http2` listener without TLS is HTTP/2 with prior knowledge
  # (no Upgrade) in nginx 1.22, so the HTTP/1.1 port stays as it was. Serves the `direct`
  # row of the HTTP/2 table only.
  up_h2_server="  server { listen 127.0.0.1:$up_h2_port http2; root $work/up/www; }"
fi
{
  nginx_common "$work/up"
  cat <<CONF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common "$work/up")
  sendfile on;
  server {
    listen 127.0.0.1:$up_port;
    root $work/up/www;
    # The task API stub: submit → 202 with an operation id, as an async-first backend.
    location = /v1/tasks {
      default_type application/json;
      return 202 '{"taskId":"t-1","status":"pending"}';
    }
  }
$up_h2_server
}
CONF
} > "$work/up/nginx.conf"
nginx -e "$work/up/err.log" -p "$work/up" -c "$work/up/nginx.conf" &
up_master=$!
pids+=("$up_master")
wait_http "http://127.0.0.1:$up_port/1k"

# --- nginx as a reverse proxy -----------------------------------------------------------------
px_port=$(free_port)
px_h2_port=$(free_port)
if has_peer nginx; then
  px_location='location / {
      proxy_pass http://up;
      proxy_http_version 1.1;       # keep-alive to the upstream needs 1.1 ...
      proxy_set_header Connection ""; # ... and no "Connection: close" from nginx
    }'
  px_h2_server=""
  # The same proxy on an h2c port (see the upstream's comment); the upstream side stays 1.1.
  [ "$H2" = 1 ] && px_h2_server="  server { listen 127.0.0.1:$px_h2_port http2; $px_location }"
  {
    nginx_common "$work/px"
    cat <<CONF
worker_processes $NPROC;
events { worker_connections 4096; }
http {
$(nginx_http_common "$work/px")
  upstream up {
    server 127.0.0.1:$up_port;
    keepalive 64; # idle upstream connections kept per worker
  }
  server {
    listen 127.0.0.1:$px_port;
    $px_location
  }
$px_h2_server
}
CONF
  } > "$work/px/nginx.conf"
  nginx -e "$work/px/err.log" -p "$work/px" -c "$work/px/nginx.conf" &
  px_master=$!
  pids+=("$px_master")
  wait_http "http://127.0.0.1:$px_port/1k"
fi

# --- HAProxy as a reverse proxy ---------------------------------------------------------------
hx_port=$(free_port)
hx_h2_port=$(free_port)
if has_peer haproxy; then
  hx_h2_bind=""
  # h2c with prior knowledge on a second bind of the same frontend.
  [ "$H2" = 1 ] && hx_h2_bind="  bind 127.0.0.1:$hx_h2_port proto h2"
  cat > "$work/hx/haproxy.cfg" <<CONF
global
  # As many threads as the gateway's tokio workers and nginx's worker processes.
  nbthread $NPROC
  # No "log" line anywhere: HAProxy logs nothing (nginx: access_log off; gateway: RUST_LOG=warn).

defaults
  mode http
  # Generous: no run should ever hit one, and an idle keep-alive client must not be cut.
  timeout connect 10s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s
  timeout http-request 120s

frontend px
  bind 127.0.0.1:$hx_port
$hx_h2_bind
  default_backend up

backend up
  # Any idle upstream connection serves any client's request (nginx's keepalive pool and
  # the gateway's pool work this way); the default "safe" keeps a client's first request
  # on a fresh or its own connection. Keep-alive HTTP/1.1 to the upstream is the default.
  http-reuse always
  server up 127.0.0.1:$up_port
CONF
  haproxy -c -q -f "$work/hx/haproxy.cfg"
  # -db: foreground, one process (threads), so $! is the process to measure and stop.
  haproxy -db -f "$work/hx/haproxy.cfg" 2> "$work/hx/err.log" &
  hx_pid=$!
  pids+=("$hx_pid")
  wait_http "http://127.0.0.1:$hx_port/1k"
fi

# --- prefer-gateway -------------------------------------------------------------------------------
gw_port=$(free_port)
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
[jobs]
store = "memory"
[[routes]]
name = "tasks"
kind = "task"
methods = ["POST"]
path = "/v1/tasks"
upstream = "http://127.0.0.1:$up_port"
[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"

[[routes]]
name = "bench"
kind = "proxy"
methods = ["GET"]
path = "/{*rest}"
upstream = "http://127.0.0.1:$up_port"
TOML
RUST_LOG=warn "$gw_bin" run --config "$work/gw.toml" 2> "$work/gw.log" &
gw_pid=$!
pids+=("$gw_pid")
wait_http "http://127.0.0.1:$gw_port/1k"

# Where each target listens (HTTP/1.1, and h2c: the gateway serves both on one port) and the
# processes it is charged with. `direct` has no proxy: its rows show the upstream's own cost.
declare -A h1_port=([direct]=$up_port [nginx]=$px_port [haproxy]=$hx_port [gateway]=$gw_port)
declare -A h2_port=([direct]=$up_h2_port [nginx]=$px_h2_port [haproxy]=$hx_h2_port [gateway]=$gw_port)
declare -A main_pid=([direct]=$up_master [nginx]=${px_master:-} [haproxy]=${hx_pid:-} [gateway]=$gw_pid)
target_url() { echo "http://127.0.0.1:${h1_port[$1]}/1k"; }
task_url() { echo "http://127.0.0.1:${h1_port[$1]}/v1/tasks"; }
h2_url() { echo "http://127.0.0.1:${h2_port[$1]}/1k"; }
# The process and its children: nginx's master + workers; HAProxy's and the gateway's one
# process (all its threads are in its /proc/<pid>/stat).
target_pids() { echo "${main_pid[$1]}"; pgrep -P "${main_pid[$1]}" || true; }

for t in "${targets[@]}"; do
  n=$(curl -s "$(target_url "$t")" | wc -c)
  [ "$n" = 1024 ] || { echo "$t: body is $n bytes, not 1024" >&2; exit 1; }
  if [ "$H2" = 1 ]; then
    wait_http "$(h2_url "$t")" --http2-prior-knowledge
    got=$(curl -s --http2-prior-knowledge -o "$work/h2body" -w '%{http_version}' "$(h2_url "$t")")
    n=$(wc -c < "$work/h2body")
    { [ "$got" = 2 ] && [ "$n" = 1024 ]; } || { echo "$t: h2c gave HTTP/$got, $n bytes" >&2; exit 1; }
  fi
done

cpu_ticks() { # pids… → summed utime+stime (fields 14+15; comm may hold spaces, so cut after ')')
  local p s=0
  for p in "$@"; do
    s=$((s + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$s"
}
peak_rss_kib() { # pids… → summed VmHWM
  local p s=0
  for p in "$@"; do s=$((s + $(awk '/^VmHWM:/{print $2}' "/proc/$p/status"))); done
  echo "$s"
}
# Writing 5 to clear_refs sets VmHWM back to the current RSS (Linux ≥ 4.0, as the process's
# owner or root), so the VmHWM read after a run is that run's peak, not the peak of an
# earlier scenario (HTTP/2's 640 streams need more memory than 64 HTTP/1.1 connections).
rss_per_run=1
reset_peak_rss() { # pids…
  local p
  for p in "$@"; do echo 5 2>/dev/null > "/proc/$p/clear_refs" || rss_per_run=0; done
}

# A balanced Latin square (Williams design) over the targets: round k runs them in the order
# base[j] + k (mod n) with base = 0, 1, n−1, 2, n−2, …; with an even n every target takes
# every position once in n rounds and follows every other target once, so neither a slot
# (first after the build, last before the next scenario) nor a neighbour's leftovers (its
# TIME_WAIT sockets, a warm cache) land on one target. An odd n needs the n mirrored orders too.
round_order() { # round (1-based) → the targets in that round's order
  local n=${#targets[@]} j s k order=()
  local period=$((n % 2 ? 2 * n : n))
  k=$(((${1} - 1) % period))
  for ((j = 0; j < n; j++)); do
    if ((j == 0)); then s=0; elif ((j % 2)); then s=$(((j + 1) / 2)); else s=$((n - j / 2)); fi
    order+=("${targets[$(((s + k) % n))]}")
  done
  if ((k >= n)); then
    for ((j = n - 1; j >= 0; j--)); do echo -n "${order[$j]} "; done
  else
    echo -n "${order[*]}"
  fi
  echo
}

cat > "$work/task.lua" <<'LUA'
-- POST a submit with Prefer: respond-async (what the `task` scenario sends).
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
LUA
cat > "$work/stats.lua" <<'LUA'
-- Machine-readable summary after wrk's own report; latencies in µs.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("STATS requests=%d duration_us=%d p50=%d p99=%d p999=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
cat "$work/task.lua" "$work/stats.lua" > "$work/task-stats.lua"

# wrk results: one line per run in $work/runs:
#   kind target round rps p50 p99 p999 cpu_s_per_1k errors peak_rss_kib
run_wrk() { # kind(c64|c1|task) target round
  local kind=$1 target=$2 round=$3 ps t0 t1 rss line
  read -ra ps <<< "$(target_pids "$target" | tr '\n' ' ')"
  reset_peak_rss "${ps[@]}"
  t0=$(cpu_ticks "${ps[@]}")
  case $kind in
    c64) run_load "$work/out" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/stats.lua" "$(target_url "$target")" ;;
    task) run_load "$work/out" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/task-stats.lua" "$(task_url "$target")" ;;
    c1) run_load "$work/out" wrk -t1 -c1 -d"${DURATION}s" --latency -s "$work/stats.lua" "$(target_url "$target")" ;;
  esac
  t1=$(cpu_ticks "${ps[@]}")
  rss=$(peak_rss_kib "${ps[@]}")
  cat "$work/out" >> "$work/wrk.log"
  line=$(grep '^STATS' "$work/out")
  local requests duration_us p50 p99 p999 errors non2xx
  eval "${line#STATS }" # requests= duration_us= p50= p99= p999= errors= non2xx=
  awk -v k="$kind" -v t="$target" -v r="$round" -v n="$requests" -v d="$duration_us" \
      -v p50="$p50" -v p99="$p99" -v p999="$p999" -v e="$((errors + non2xx))" \
      -v ticks="$((t1 - t0))" -v hz="$TICK" -v rss="$rss" 'BEGIN {
    printf "%s %s %s %.1f %d %d %d %.4f %d %d\n", k, t, r, n / (d / 1e6), p50, p99, p999,
      (ticks / hz) / (n / 1000), e, rss }' >> "$work/runs"
  printf '  %-4s %-8s round %s: %s\n' "$kind" "$target" "$round" "$(tail -1 "$work/runs" | cut -d' ' -f4-)"
}

# h2load results: one line per run in $work/h2runs:
#   h2 target round rps mean sd max cpu_s_per_1k errors peak_rss_kib
# h2load prints no percentiles: "time for request" gives min, max, mean and sd; we keep mean,
# sd and max (µs). Its req/s is its own (requests done ÷ the -D duration).
run_h2() { # target round
  local target=$1 round=$2 ps t0 t1 rss
  read -ra ps <<< "$(target_pids "$target" | tr '\n' ' ')"
  reset_peak_rss "${ps[@]}"
  t0=$(cpu_ticks "${ps[@]}")
  run_load "$work/out" h2load -t"$((H2_CONNS < 2 ? 1 : 2))" -c"$H2_CONNS" -m"$H2_STREAMS" -D "$DURATION" "$(h2_url "$target")"
  t1=$(cpu_ticks "${ps[@]}")
  rss=$(peak_rss_kib "${ps[@]}")
  cat "$work/out" >> "$work/h2load.log"
  awk -v t="$target" -v r="$round" -v ticks="$((t1 - t0))" -v hz="$TICK" -v rss="$rss" '
    function us(x) { # h2load prints 812us, 1.23ms or 1.05s
      if (x ~ /us$/) return x + 0; if (x ~ /ms$/) return x * 1000; if (x ~ /s$/) return x * 1e6; return -1 }
    /^finished in/ { rps = $4 }
    # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
    /^requests:/ { ok = $8; failed = $10 }
    # "failed" already counts 4xx/5xx and network errors; a 3xx is a "success" to h2load
    # but not the 200 every target should give.
    /^status codes:/ { s3xx = $5 }
    /^time for request:/ { max = us($5); mean = us($6); sd = us($7) }
    END {
      if (ok == "" || ok == 0) { print "h2load: no successful request" > "/dev/stderr"; exit 1 }
      printf "h2 %s %s %.1f %d %d %d %.4f %d %d\n", t, r, rps, mean, sd, max, (ticks / hz) / (ok / 1000), failed + s3xx, rss }
  ' "$work/out" >> "$work/h2runs"
  printf '  %-4s %-8s round %s: %s\n' h2 "$target" "$round" "$(tail -1 "$work/h2runs" | cut -d' ' -f4-)"
}

echo "duration=${DURATION}s rounds=$ROUNDS connections=$CONNS nproc=$NPROC targets: ${targets[*]}$([ "$H2" = 1 ] && echo "; h2: $H2_CONNS connections × $H2_STREAMS streams")"
echo "warm-up (${WARMUP}s per target)"
for t in "${targets[@]}"; do run_load "$work/out" wrk -t2 -c"$CONNS" -d"${WARMUP}s" "$(target_url "$t")"; done
: > "$work/runs"
: > "$work/h2runs"
echo "rounds (columns: req/s p50 p99 p99.9 [µs] CPU-s/1k errors peak-RSS-KiB)"
for r in $(seq "$ROUNDS"); do
  read -ra order <<< "$(round_order "$r")"
  echo " round $r: ${order[*]}"
  for t in "${order[@]}"; do run_wrk c64 "$t" "$r"; done
  for t in "${order[@]}"; do run_wrk c1 "$t" "$r"; done
  for t in "${order[@]}"; do run_wrk task "$t" "$r"; done
done
# HTTP/2 after all HTTP/1.1 rounds, with its own warm-up: 640 concurrent streams leave the
# gateway's allocator holding more memory than 64 connections need, which would otherwise
# show up in every later HTTP/1.1 run's peak RSS.
if [ "$H2" = 1 ]; then
  echo "HTTP/2 warm-up (${WARMUP}s per target)"
  for t in "${targets[@]}"; do run_load "$work/out" h2load -c"$H2_CONNS" -m"$H2_STREAMS" -D "$WARMUP" "$(h2_url "$t")"; done
  echo "HTTP/2 rounds (columns: req/s mean sd max [µs] CPU-s/1k errors peak-RSS-KiB)"
  for r in $(seq "$ROUNDS"); do
    read -ra order <<< "$(round_order "$r")"
    echo " round $r: ${order[*]}"
    for t in "${order[@]}"; do run_h2 "$t" "$r"; done
  done
fi

# oha: optional second load generator, one pass per target at $CONNS connections.
oha_rows=""
rate_rows=""
if [ "$OHA" = 1 ]; then
  if oha --help 2>&1 | grep -q -- '--output-format'; then oha_fmt=(--output-format json); else oha_fmt=(-j); fi
  oha_row() { # target json → a table row
    python3 - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[2])); p = d.get("latencyPercentiles", {})
us = lambda k: "%.0f" % (p[k] * 1e6) if p.get(k) is not None else "?"
print("| %s | %.0f | %s | %s | %s |" % (sys.argv[1], d["summary"]["requestsPerSec"], us("p50"), us("p99"), us("p99.9")))
PY
  }
  for t in "${targets[@]}"; do
    if run_load "$work/oha-$t.json" oha --no-tui "${oha_fmt[@]}" -z "${DURATION}s" -c "$CONNS" "$(target_url "$t")"; then
      oha_rows+=$(oha_row "$t" "$work/oha-$t.json")$'\n'
    else
      oha_rows+="| $t | oha failed | | | |"$'\n'
    fi
  done
  # Fixed rate with latency correction (coordinated omission: latency counts from when a
  # request was due, not when it was sent), below every target's capacity.
  for t in "${targets[@]}"; do
    if run_load "$work/oha-rate-$t.json" oha --no-tui "${oha_fmt[@]}" -z "${DURATION}s" -c "$CONNS" -q "$RATE" --latency-correction "$(target_url "$t")"; then
      rate_rows+=$(oha_row "$t" "$work/oha-rate-$t.json")$'\n'
    else
      rate_rows+="| $t | oha failed | | | |"$'\n'
    fi
  done
fi

# --- report -------------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v k="$2" -v t="$3" -v c="$4" '$1 == k && $2 == t { print $c }' "$1" | median; } # file kind target column
sum9() { awk -v t="$2" '$2 == t { s += $9 } END { print s + 0 }' "$1"; }                      # file target → errors
declare -A M # "kind:target:field" → median over rounds
for t in "${targets[@]}"; do
  for k in c64 c1 task; do
    for f in rps:4 p50:5 p99:6 p999:7 cpu:8 rss:10; do M[$k:$t:${f%:*}]=$(col "$work/runs" "$k" "$t" "${f#*:}"); done
  done
  M[wrk:$t:errors]=$(sum9 "$work/runs" "$t")
  if [ "$H2" = 1 ]; then
    for f in rps:4 mean:5 sd:6 max:7 cpu:8 rss:10; do M[h2:$t:${f%:*}]=$(col "$work/h2runs" h2 "$t" "${f#*:}"); done
    M[h2:$t:errors]=$(sum9 "$work/h2runs" "$t")
  fi
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "—" }'; }
label() { case $1 in nginx) echo nginx ;; haproxy) echo HAProxy ;; esac; }
# The ratio columns, one pair per peer: req/s vs each peer, then CPU vs each peer.
ratio_head() { local p; for p in "${peers[@]}"; do echo -n " req/s vs $(label "$p") |"; done; for p in "${peers[@]}"; do echo -n " CPU vs $(label "$p") |"; done; }
ratio_rule() { local p; for p in "${peers[@]}" "${peers[@]}"; do printf '%s' '---:|'; done; }
ratio_cells() { # kind target → "| a | b | …" (direct has no CPU ratio: its CPU is the upstream's)
  local p
  for p in "${peers[@]}"; do echo -n " $(ratio "${M[$1:$2:rps]}" "${M[$1:$p:rps]}") |"; done
  for p in "${peers[@]}"; do
    if [ "$2" = direct ]; then echo -n " — |"; else echo -n " $(ratio "${M[$1:$2:cpu]}" "${M[$1:$p:cpu]}") |"; fi
  done
}
cpu_cell() { # kind target → CPU-s/1k, in parentheses for direct (the upstream's own)
  local c
  c=$(printf '%.4f' "${M[$1:$2:cpu]}")
  if [ "$2" = direct ]; then echo "($c)"; else echo "$c"; fi
}
rss_cell() { # kind target → MiB, in parentheses for direct
  local m
  m=$(awk -v k="${M[$1:$2:rss]}" 'BEGIN { printf "%.1f", k / 1024 }')
  if [ "$2" = direct ]; then echo "($m)"; else echo "$m"; fi
}

stamp=$(date +%Y%m%d-%H%M)
mkdir -p bench/results
out=bench/results/proxy-vs-peers-$stamp.md
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . ':!bench' 2>/dev/null || commit="$commit (+ uncommitted changes)"
# `|| true`: `wrk -v` prints its version in the usage text and exits 1.
versions="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
has_peer haproxy && versions+=", HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }')"
versions+=", $(wrk -v 2>&1 | awk 'NR == 1 { print "wrk " $2 }' || true)"
[ "$H2" = 1 ] && versions+=", $(h2load --version | head -1)"
[ "$OHA" = 1 ] && versions+=", $(oha --version | head -1)"
{
  echo "# proxy vs peers — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $NPROC CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
  echo "- $versions, prefer-gateway $commit"
  echo -n "- load: wrk -t2 -c$CONNS -d${DURATION}s, wrk -t1 -c1 -d${DURATION}s and the task scenario"
  [ "$H2" = 1 ] && echo -n ", h2load -c$H2_CONNS -m$H2_STREAMS -D $DURATION (h2c)"
  echo " per target, $ROUNDS round(s) (HTTP/2 after the HTTP/1.1 rounds), order rotating (balanced Latin square), medians; ${WARMUP}s warm-up per target"
  echo -n "- upstream: nginx, 1 worker, static 1 KiB file + task stub, HTTP/1.1 to every proxy"
  has_peer nginx && echo -n "; nginx proxy: $NPROC workers, keepalive 64"
  has_peer haproxy && echo -n "; HAProxy: nbthread $NPROC, http-reuse always, no logging"
  echo "; gateway: $NPROC runtime threads, RUST_LOG=warn"
  echo
  echo "## $CONNS connections"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | CPU-s/1k req | peak RSS MiB |$(ratio_head) errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|$(ratio_rule)---:|"
  for t in "${targets[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %s | %s |%s %s |\n' "$t" "${M[c64:$t:rps]}" \
      "${M[c64:$t:p50]}" "${M[c64:$t:p99]}" "${M[c64:$t:p999]}" "$(cpu_cell c64 "$t")" "$(rss_cell c64 "$t")" \
      "$(ratio_cells c64 "$t")" "${M[wrk:$t:errors]}"
  done
  echo
  echo "## 1 connection (added latency = target − direct)"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | CPU-s/1k req |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${targets[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$t" "${M[c1:$t:rps]}" \
      "${M[c1:$t:p50]}" "${M[c1:$t:p99]}" "${M[c1:$t:p999]}" \
      "$(awk -v a="${M[c1:$t:p50]}" -v b="${M[c1:direct:p50]}" 'BEGIN { print a - b }')" \
      "$(awk -v a="${M[c1:$t:p99]}" -v b="${M[c1:direct:p99]}" 'BEGIN { print a - b }')" "$(cpu_cell c1 "$t")"
  done
  echo
  echo "## task route: \`POST\` + \`Prefer: respond-async\` → the upstream's 202, $CONNS connections"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | CPU-s/1k req |$(ratio_head)"
  echo "|---|---:|---:|---:|---:|---:|$(ratio_rule)"
  for t in "${targets[@]}"; do
    printf '| %s | %.0f | %s | %s | %s | %s |%s\n' "$t" "${M[task:$t:rps]}" \
      "${M[task:$t:p50]}" "${M[task:$t:p99]}" "${M[task:$t:p999]}" "$(cpu_cell task "$t")" \
      "$(ratio_cells task "$t")"
  done
  if [ "$H2" = 1 ]; then
    echo
    echo "## HTTP/2 (h2c, prior knowledge): h2load, $H2_CONNS connections × $H2_STREAMS streams; upstream side HTTP/1.1"
    echo
    echo "| target | req/s | mean µs | sd µs | max µs | CPU-s/1k req | peak RSS MiB |$(ratio_head) errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|$(ratio_rule)---:|"
    for t in "${targets[@]}"; do
      printf '| %s | %.0f | %.0f | %.0f | %.0f | %s | %s |%s %s |\n' "$t" "${M[h2:$t:rps]}" \
        "${M[h2:$t:mean]}" "${M[h2:$t:sd]}" "${M[h2:$t:max]}" "$(cpu_cell h2 "$t")" "$(rss_cell h2 "$t")" \
        "$(ratio_cells h2 "$t")" "${M[h2:$t:errors]}"
    done
    echo
    echo "h2load reports no percentiles: mean, sd and max are its \"time for request\" (request sent →"
    echo "response complete), each the median over rounds; \`direct\` is the upstream nginx's own h2c listener."
  fi
  echo
  echo "CPU and RSS are the proxy's own (nginx: master + workers; HAProxy, gateway: the process, all"
  echo "threads); on the \`direct\` row, in parentheses, they are the upstream nginx's, for scale."
  if [ "$rss_per_run" = 1 ]; then
    echo "Peak RSS: VmHWM at the end of each run (reset before it), median over rounds."
  else
    echo "Peak RSS: VmHWM since the process started (clear_refs was not writable, so no per-run reset)."
  fi
  echo -n "errors = socket errors + non-2xx responses over all wrk runs of the target"
  if [ "$H2" = 1 ]; then echo "; in the HTTP/2 table, h2load's failed requests + 3xx over its runs."; else echo .; fi
  if [ -n "$oha_rows" ]; then
    echo
    echo "## oha, $CONNS connections, one pass"
    echo
    echo "| target | req/s | p50 µs | p99 µs | p99.9 µs |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s' "$oha_rows"
    echo
    echo "## oha, fixed rate $RATE req/s, latency-corrected, $CONNS connections"
    echo
    echo "| target | req/s | p50 µs | p99 µs | p99.9 µs |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s' "$rate_rows"
  fi
  echo
  echo "<details><summary>every run (kind target round req/s p50 p99 p99.9 CPU-s/1k errors peak-RSS-KiB; h2: req/s mean sd max …)</summary>"
  echo
  echo '```'
  for r in $(seq "$ROUNDS"); do echo "# round $r: $(round_order "$r")"; done
  cat "$work/runs" "$work/h2runs"
  echo '```'
  echo "</details>"
} > "$out"
echo
cat "$out"
echo
echo "written to $out"
if [ -s "$work/gw.log" ]; then echo "gateway log (warn and above):"; tail -20 "$work/gw.log"; fi
if [ -s "$work/hx/err.log" ]; then echo "HAProxy log:"; tail -20 "$work/hx/err.log"; fi
