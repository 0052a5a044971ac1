#!/usr/bin/env bash
# Jobs accepted per second on the SQLite store: `Prefer: respond-async` with a small body,
# measured with wrk against a release build. The upstream is a trivial Python server (the
# jobs run in the background while the load runs, as they would in production).
#
#   bench/jobs-accept.sh [connections] [seconds] [store]      store: sqlite | redis | memory
#   REDIS_FSYNC=everysec bench/jobs-accept.sh 16 10 redis      (default: always)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-16}; secs=${2:-10}; store_kind=${3:-sqlite}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

python3 - "$work/up.port" <<'PY' &
import sys, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1])); s.serve_forever()
PY
for _ in $(seq 50); do [ -s "$work/up.port" ] && break; sleep 0.1; done
case "$store_kind" in
  sqlite) store="sqlite:$work/jobs.db" ;;
  redis)
    # A private redis-server with the durable setting (every write fsynced before the 202).
    command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --save "" \
      --appendonly yes --appendfsync "${REDIS_FSYNC:-always}" --daemonize no >/dev/null &
    for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
    store="redis://127.0.0.1:$rport/0" ;;
  *) store="$store_kind" ;;
esac
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:0"
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
for _ in $(seq 100); do grep -q "addr=" "$work/gw.log" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/.*addr=\([0-9.:]*\).*/\1/p' "$work/gw.log" | head -1)
cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"scene":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
LUA
echo "store=$store_kind connections=$conns duration=${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/post.lua" "http://$addr/v1/render"
