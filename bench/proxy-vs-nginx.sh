#!/usr/bin/env bash
# What prefer-gateway costs in front of a backend, next to nginx doing the same job.
#
# Upstream: Debian nginx (1 worker) serving a static 1 KiB file on loopback. Targets, measured
# side by side in one run:
#   direct  — wrk straight at the upstream
#   nginx   — Debian nginx as a reverse proxy (keepalive 64, HTTP/1.1, workers = nproc)
#   gateway — prefer-gateway (release build) with one `proxy` route GET /{*rest}
# Per round: wrk -t2 -c64 against each target, then wrk -t1 -c1, then the task scenario
# (wrk -t2 -c64 POSTing with `Prefer: respond-async` to a `task` route; the upstream nginx's
# task stub answers 202 with an operation id). Rounds alternate the target order; the table
# reports medians over rounds. OHA=1 adds oha at 64 connections and a fixed-rate pass
# (RATE req/s, --latency-correction). CPU is utime+stime of
# the proxy process(es) from /proc/<pid>/stat, peak RSS is VmHWM from /proc/<pid>/status.
#
#   bench/proxy-vs-nginx.sh                    DURATION=10 ROUNDS=3 by default
#   DURATION=5 ROUNDS=2 bench/proxy-vs-nginx.sh
#   OHA=1 bench/proxy-vs-nginx.sh              also one oha pass per target (cargo install oha)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-2}
OHA=${OHA:-0}
RATE=${RATE:-5000} # oha's fixed-rate pass, requests per second
NPROC=$(nproc)
TICK=$(getconf CLK_TCK)

command -v nginx >/dev/null && command -v wrk >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq nginx wrk; }
if [ "$OHA" = 1 ] && ! command -v oha >/dev/null; then
  cargo install oha --locked
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo build --release -q
gw_bin=./target/release/prefer-gateway

work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody and read the 1 KiB file from here
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
wait_http() { # url: until it answers 200 (10 s)
  local i
  for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no 200 from $1" >&2
  return 1
}

# --- upstream: nginx, 1 worker, static 1 KiB body ---------------------------------------
up_port=$(free_port)
mkdir -p "$work/up/www" "$work/px"
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
CONF
}
{
  nginx_common "$work/up"
  cat <<CONF
worker_processes 1;
events { worker_connections 4096; }
http {
$(nginx_http_common "$work/up")
  sendfile on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$up_port;
    root $work/up/www;
    # The task API stub: submit → 202 with an operation id, as an async-first backend.
    location = /v1/tasks {
      default_type application/json;
      return 202 '{"taskId":"t-1","status":"pending"}';
    }
  }
}
CONF
} > "$work/up/nginx.conf"
nginx -e "$work/up/err.log" -p "$work/up" -c "$work/up/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/1k"

# --- (b) nginx as a reverse proxy -----------------------------------------------------------
px_port=$(free_port)
{
  nginx_common "$work/px"
  cat <<CONF
worker_processes $NPROC;
events { worker_connections 4096; }
http {
$(nginx_http_common "$work/px")
  keepalive_requests 1000000;
  upstream up {
    server 127.0.0.1:$up_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$px_port;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
} > "$work/px/nginx.conf"
nginx -e "$work/px/err.log" -p "$work/px" -c "$work/px/nginx.conf" &
px_master=$!
pids+=("$px_master")
wait_http "http://127.0.0.1:$px_port/1k"

# --- (c) prefer-gateway -----------------------------------------------------------------------
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
for t in up px gw; do
  case $t in up) p=$up_port ;; px) p=$px_port ;; gw) p=$gw_port ;; esac
  n=$(curl -s "http://127.0.0.1:$p/1k" | wc -c)
  [ "$n" = 1024 ] || { echo "$t: body is $n bytes, not 1024" >&2; exit 1; }
done

up_master=${pids[0]}
proc_tree() { echo "$1"; pgrep -P "$1" || true; } # nginx: master + workers
target_url() { case $1 in direct) echo "http://127.0.0.1:$up_port/1k" ;; nginx) echo "http://127.0.0.1:$px_port/1k" ;; gateway) echo "http://127.0.0.1:$gw_port/1k" ;; esac; }
# The processes whose CPU and RSS a target is charged with. `direct` has no proxy: its row
# shows the upstream nginx's own cost, for scale.
target_pids() { case $1 in direct) proc_tree "$up_master" ;; nginx) proc_tree "$px_master" ;; gateway) echo "$gw_pid" ;; esac; }
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
task_url() { case $1 in direct) echo "http://127.0.0.1:$up_port/v1/tasks" ;; nginx) echo "http://127.0.0.1:$px_port/v1/tasks" ;; gateway) echo "http://127.0.0.1:$gw_port/v1/tasks" ;; esac; }

# results: one line per run in $work/runs: kind target round rps p50 p99 p999 cpu_ms_per_1k errors
run_wrk() { # kind(c64|c1|task) target round
  local kind=$1 target=$2 round=$3 url ps t0 t1 out line
  url=$(target_url "$target")
  read -ra ps <<< "$(target_pids "$target" | tr '\n' ' ')"
  t0=$(cpu_ticks "${ps[@]}")
  if [ "$kind" = c64 ]; then
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/stats.lua" "$url")
  elif [ "$kind" = task ]; then
    out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$work/task-stats.lua" "$(task_url "$target")")
  else
    out=$(wrk -t1 -c1 -d"${DURATION}s" --latency -s "$work/stats.lua" "$url")
  fi
  t1=$(cpu_ticks "${ps[@]}")
  echo "$out" >> "$work/wrk.log"
  line=$(grep '^STATS' <<< "$out")
  eval "$(sed 's/^STATS //' <<< "$line")" # requests= duration_us= p50= p99= p999= errors= non2xx=
  awk -v k="$kind" -v t="$target" -v r="$round" -v n="$requests" -v d="$duration_us" \
      -v p50="$p50" -v p99="$p99" -v p999="$p999" -v e="$((errors + non2xx))" \
      -v ticks="$((t1 - t0))" -v hz="$TICK" 'BEGIN {
    printf "%s %s %s %.1f %d %d %d %.4f %d\n", k, t, r, n / (d / 1e6), p50, p99, p999,
      (ticks / hz) / (n / 1000), e }' >> "$work/runs"
  printf '  %-4s %-8s round %s: %s\n' "$kind" "$target" "$round" "$(tail -1 "$work/runs" | cut -d' ' -f4-)"
}

echo "duration=${DURATION}s rounds=$ROUNDS connections=$CONNS nproc=$NPROC"
echo "warm-up (${WARMUP}s per target)"
for t in direct nginx gateway; do wrk -t2 -c"$CONNS" -d"${WARMUP}s" "$(target_url "$t")" >/dev/null; done
orders=("direct nginx gateway" "gateway nginx direct" "nginx direct gateway")
: > "$work/runs"
echo "rounds (columns: req/s p50 p99 p99.9 [µs] CPU-s/1k errors)"
for r in $(seq "$ROUNDS"); do
  order=${orders[$(((r - 1) % 3))]}
  for t in $order; do run_wrk c64 "$t" "$r"; done
  for t in $order; do run_wrk c1 "$t" "$r"; done
  for t in $order; do run_wrk task "$t" "$r"; done
done

# oha: optional second load generator, one pass per target at $CONNS connections.
oha_rows=""
rate_rows=""
if [ "$OHA" = 1 ]; then
  if oha --help 2>&1 | grep -q -- '--output-format'; then oha_fmt=(--output-format json); else oha_fmt=(-j); fi
  for t in direct nginx gateway; do
    if oha --no-tui "${oha_fmt[@]}" -z "${DURATION}s" -c "$CONNS" "$(target_url "$t")" > "$work/oha-$t.json" 2>/dev/null; then
      oha_rows+=$(python3 - "$t" "$work/oha-$t.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2])); p = d.get("latencyPercentiles", {})
us = lambda k: "%.0f" % (p[k] * 1e6) if p.get(k) is not None else "?"
print("| %s | %.0f | %s | %s | %s |" % (sys.argv[1], d["summary"]["requestsPerSec"], us("p50"), us("p99"), us("p99.9")))
PY
)$'\n'
    else
      oha_rows+="| $t | oha failed | | | |"$'\n'
    fi
  done
  # Fixed rate with latency correction (coordinated omission: latency counts from when a
  # request was due, not when it was sent), below every target's capacity.
  for t in direct nginx gateway; do
    if oha --no-tui "${oha_fmt[@]}" -z "${DURATION}s" -c "$CONNS" -q "$RATE" --latency-correction "$(target_url "$t")" > "$work/oha-rate-$t.json" 2>/dev/null; then
      rate_rows+=$(python3 - "$t" "$work/oha-rate-$t.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2])); p = d.get("latencyPercentiles", {})
us = lambda k: "%.0f" % (p[k] * 1e6) if p.get(k) is not None else "?"
print("| %s | %.0f | %s | %s | %s |" % (sys.argv[1], d["summary"]["requestsPerSec"], us("p50"), us("p99"), us("p99.9")))
PY
)$'\n'
    else
      rate_rows+="| $t | oha failed | | | |"$'\n'
    fi
  done
fi

# --- report -------------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v k="$1" -v t="$2" -v c="$3" '$1 == k && $2 == t { print $c }' "$work/runs" | median; }
for t in direct nginx gateway; do
  read -ra ps <<< "$(target_pids "$t" | tr '\n' ' ')"
  declare "rss_$t=$(peak_rss_kib "${ps[@]}")"
  for k in c64 c1 task; do
    declare "${k}_rps_$t=$(col "$k" "$t" 4)" "${k}_p50_$t=$(col "$k" "$t" 5)" \
      "${k}_p99_$t=$(col "$k" "$t" 6)" "${k}_p999_$t=$(col "$k" "$t" 7)" \
      "${k}_cpu_$t=$(col "$k" "$t" 8)"
  done
  declare "errors_$t=$(awk -v t="$t" '$2 == t { s += $9 } END { print s + 0 }' "$work/runs")"
done
v() { local n=$1; echo "${!n}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "—" }'; }

stamp=$(date +%Y%m%d-%H%M)
mkdir -p bench/results
out=bench/results/proxy-vs-nginx-$stamp.md
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . ':!bench' 2>/dev/null || commit="$commit (+ uncommitted changes)"
{
  echo "# proxy vs nginx — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $NPROC CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
  echo "- $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'), prefer-gateway $commit"
  echo "- load: wrk -t2 -c$CONNS -d${DURATION}s and wrk -t1 -c1 -d${DURATION}s per target, $ROUNDS round(s), order alternating, medians; ${WARMUP}s warm-up per target"
  echo "- upstream: nginx, 1 worker, static 1 KiB file; nginx proxy: $NPROC workers, keepalive 64; gateway: $NPROC runtime threads, RUST_LOG=warn"
  echo
  echo "## $CONNS connections"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | CPU-s/1k req | peak RSS MiB | req/s vs nginx | CPU vs nginx | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in direct nginx gateway; do
    cpu=$(printf '%.4f' "$(v c64_cpu_$t)"); rss=$(awk -v k="$(v rss_$t)" 'BEGIN { printf "%.1f", k / 1024 }')
    cpu_ratio=$(ratio "$(v c64_cpu_$t)" "$c64_cpu_nginx")
    if [ "$t" = direct ]; then cpu="($cpu)"; rss="($rss)"; cpu_ratio="—"; fi
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(v c64_rps_$t)" \
      "$(v c64_p50_$t)" "$(v c64_p99_$t)" "$(v c64_p999_$t)" "$cpu" "$rss" \
      "$(ratio "$(v c64_rps_$t)" "$c64_rps_nginx")" "$cpu_ratio" "$(v errors_$t)"
  done
  echo
  echo "## 1 connection (added latency = target − direct)"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | added p50 µs | added p99 µs | CPU-s/1k req |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in direct nginx gateway; do
    cpu=$(printf '%.4f' "$(v c1_cpu_$t)"); [ "$t" = direct ] && cpu="($cpu)"
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$t" "$(v c1_rps_$t)" \
      "$(v c1_p50_$t)" "$(v c1_p99_$t)" "$(v c1_p999_$t)" \
      "$(($(v c1_p50_$t) - c1_p50_direct))" "$(($(v c1_p99_$t) - c1_p99_direct))" "$cpu"
  done
  echo
  echo "## task route: \`POST\` + \`Prefer: respond-async\` → the upstream's 202, $CONNS connections"
  echo
  echo "| target | req/s | p50 µs | p99 µs | p99.9 µs | CPU-s/1k req | req/s vs nginx | CPU vs nginx |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in direct nginx gateway; do
    cpu=$(printf '%.4f' "$(v task_cpu_$t)"); cpu_ratio=$(ratio "$(v task_cpu_$t)" "$task_cpu_nginx")
    if [ "$t" = direct ]; then cpu="($cpu)"; cpu_ratio="—"; fi
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$t" "$(v task_rps_$t)" \
      "$(v task_p50_$t)" "$(v task_p99_$t)" "$(v task_p999_$t)" "$cpu" \
      "$(ratio "$(v task_rps_$t)" "$task_rps_nginx")" "$cpu_ratio"
  done
  echo
  echo "CPU and RSS are the proxy's own (nginx: master + workers; gateway: its process); on the"
  echo "\`direct\` row, in parentheses, they are the upstream nginx's, for scale. errors = socket"
  echo "errors + non-2xx responses over all runs of the target."
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
  echo "<details><summary>every run (kind target round req/s p50 p99 p99.9 CPU-s/1k errors)</summary>"
  echo
  echo '```'
  cat "$work/runs"
  echo '```'
  echo "</details>"
} > "$out"
echo
cat "$out"
echo
echo "written to $out"
if [ -s "$work/gw.log" ]; then echo "gateway log (warn and above):"; tail -20 "$work/gw.log"; fi
