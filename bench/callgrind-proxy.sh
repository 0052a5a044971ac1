#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: a repeatable number (same binary,
# same inputs → same count, whatever else the machine is doing), so it guards the hot path
# where wall-clock benchmarks on a shared 2-core box cannot.
#
# Upstream: Debian nginx serving a 1 KiB file. The release gateway runs under
# `valgrind --tool=callgrind` with one `proxy` route; curl sends WARMUP requests on one
# keep-alive connection, the counters are dumped and so zeroed (`callgrind_control -d`), curl sends
# REQUESTS more, the counters are dumped, and the total instruction count (all threads)
# divided by REQUESTS is printed. RUST_LOG defaults to info, the level a gateway runs at.
#
#   bench/callgrind-proxy.sh                  REQUESTS=2000 WARMUP=200
#   MAX_IPR=60000 bench/callgrind-proxy.sh    exit 1 when instructions/request exceed it
#
# Output: `instructions/request: N` on the last line (and the top functions by inclusive
# cost in $OUT, default bench/results/callgrind-proxy-latest.txt, and the raw profile beside
# it as .out for `callgrind_annotate --tree=caller`; neither is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
MAX_IPR=${MAX_IPR:-}
OUT=${OUT:-bench/results/callgrind-proxy-latest.txt}

command -v nginx >/dev/null && command -v valgrind >/dev/null \
  || { apt-get update -qq && apt-get install -y -qq nginx valgrind; }
cargo build --release -q
gw_bin=$PWD/target/release/prefer-gateway

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
  server { listen 127.0.0.1:$up_port; root $work/up/www; }
}
CONF
nginx -e "$work/up/err.log" -p "$work/up" -c "$work/up/nginx.conf" &
pids+=($!)
wait_http "http://127.0.0.1:$up_port/1k"

gw_port=$(free_port)
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
[jobs]
store = "memory"
[[routes]]
name = "bench"
kind = "proxy"
methods = ["GET"]
path = "/{*rest}"
upstream = "http://127.0.0.1:$up_port"
TOML
RUST_LOG=${RUST_LOG:-info} valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$gw_bin" run --config "$work/gw.toml" >"$work/gw.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
wait_http "http://127.0.0.1:$gw_port/1k"

# curl reuses one connection for every URL of a glob, so this is REQUESTS keep-alive requests.
url="http://127.0.0.1:$gw_port/1k?i=[1-%d]"
curl -sf "$(printf "$url" "$WARMUP")" >/dev/null
callgrind_control -d "$gw_pid" >/dev/null # dumps and zeroes: the next dump holds only what follows
curl -sf "$(printf "$url" "$REQUESTS")" >/dev/null
callgrind_control -d "$gw_pid" >/dev/null
sleep 1
# The last dump holds exactly the measured requests (plus idle timer ticks).
dump=$(ls -t "$work"/cg.out.* 2>/dev/null | head -1)
[ -n "$dump" ] || { echo "no callgrind dump" >&2; exit 1; }
total=$(grep -E '^(summary|totals):' "$dump" | head -1 | awk '{print $2}')
ipr=$((total / REQUESTS))
mkdir -p "$(dirname "$OUT")"
cp "$dump" "${OUT%.txt}.out"
callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | head -80 > "$OUT" || true
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' + uncommitted changes')"
echo "requests: $REQUESTS (after $WARMUP warm-up), one keep-alive connection, RUST_LOG=${RUST_LOG:-info}"
echo "instructions: $total"
echo "instructions/request: $ipr"
if [ -n "$MAX_IPR" ] && [ "$ipr" -gt "$MAX_IPR" ]; then
  echo "FAIL: $ipr instructions/request > MAX_IPR=$MAX_IPR" >&2
  exit 1
fi
