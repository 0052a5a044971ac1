#!/usr/bin/env bash
# docker/test.sh — the container image exercised on the Docker engine (issue 15). Called
# by .ci/run; fails (never skips) when the engine is missing.
#
#   1. makes the local base images when absent (base.sh: cut from this bookworm host, or
#      debootstrap elsewhere; docker import);
#   2. builds the runtime image from a binary built on the host (image.sh): the release
#      one by default; PROFILE=debug takes target/debug/prefer-gateway instead, which
#      .ci/run does because `cargo test` has just built it — the same source, and a release
#      build would add 4–8 minutes of CI on two cores for no behaviour the scenarios see;
#   3. checks the image alone: `docker run` serves on the published port with the default
#      config, as uid 10001, SQLite on the volume; a mounted config and an environment
#      override are used and shown by `check`; `docker run … demo` is reachable from the
#      host and its curl lines name the published port;
#   4. brings up docker/compose.yml (two replicas, Redis, the demo upstreams) on free host
#      ports and runs docker/scenarios.py: both replicas healthy; a job submitted on one
#      read, long-polled and cancelled on the other; a replica killed mid-jobs; a replica
#      cut off from Redis for 20 s under a steady submit load; SIGTERM drains; then
#      accepted / finished / lost over every accepted job;
#   5. tears everything down (containers, networks, volumes), also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

docker info >/dev/null 2>&1 || { echo "docker/test.sh: no Docker engine answers (docker info)" >&2; exit 1; }
command -v docker-compose >/dev/null || { echo "docker/test.sh: docker-compose is missing" >&2; exit 1; }

case ${PROFILE:-release} in
  release) cargo build --release --quiet; binary=target/release/prefer-gateway ;;
  debug) cargo build --quiet; binary=target/debug/prefer-gateway ;;
  *) echo "docker/test.sh: PROFILE is release or debug, not '$PROFILE'" >&2; exit 2 ;;
esac
export GATEWAY_IMAGE=prefer-gateway:ci-$$
export REDIS_IMAGE=prefer-gateway-redis:bookworm
IMAGE=$GATEWAY_IMAGE bash docker/image.sh "$binary"

project=pgw$$
compose=(docker-compose -p "$project" -f docker/compose.yml)
single=()
work_logs=$(mktemp /tmp/prefer-gateway-logs.XXXXXX)
cleanup() {
  local rc=$?
  if [[ $rc != 0 ]]; then
    echo "--- logs (last 40 lines per service) ---"
    "${compose[@]}" logs --no-color --tail 40 2>/dev/null || true
  fi
  [[ ${#single[@]} -gt 0 ]] && docker rm -f -v "${single[@]}" >/dev/null 2>&1 || true
  "${compose[@]}" down -v --remove-orphans -t 1 >/dev/null 2>&1 || true
  docker image rm "$GATEWAY_IMAGE" >/dev/null 2>&1 || true
  rm -f "$work_logs"
  echo "docker/test.sh: $(( $(date +%s) - started )) s, exit $rc"
}
trap cleanup EXIT

healthy() { test "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy; }
port_of() { docker port "$1" "$2" | head -1 | sed 's/.*://'; }
wait_for() {  # wait_for SECONDS CMD...: retries CMD every 0.5 s
  local limit=$1; shift
  for _ in $(seq $((limit * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  "$@"
}

echo "== the image alone"
size=$(docker image inspect -f '{{.Size}}' "$GATEWAY_IMAGE")
echo "image $GATEWAY_IMAGE: $((size / 1000)) kB"
id=$(docker run -d -p 127.0.0.1::8080 "$GATEWAY_IMAGE"); single+=("$id")
port=$(port_of "$id" 8080)
wait_for 20 curl -sS -o /dev/null "http://127.0.0.1:$port/"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/render" \
  -H 'Prefer: respond-async' -H 'X-Api-Key: ci' -d '{"duration": 0}')
[[ $code == 202 ]] || { echo "FAIL docker run serves the default config: POST /v1/render → $code"; docker logs "$id"; exit 1; }
echo "ok   docker run -p …:8080 IMAGE serves (POST /v1/render → 202, job on the volume)"
user=$(docker inspect -f '{{.Config.User}}' "$id")
[[ $user == 10001:10001 ]] || { echo "FAIL runs as $user"; exit 1; }
echo "ok   runs as uid 10001"
wait_for 30 healthy "$id"
echo "ok   HEALTHCHECK (prefer-gateway health) → healthy"
# Every line, not the first: `head -1` closing the pipe early could fail it (SIGPIPE under
# pipefail) when the log is long.
docker logs "$id" >"$work_logs" 2>&1
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$work_logs" \
  || { echo "FAIL the log is not JSON lines:"; head -5 "$work_logs"; exit 1; }
echo "ok   logs are JSON lines"
docker stop -t 30 "$id" >/dev/null
[[ $(docker inspect -f '{{.State.ExitCode}}' "$id") == 0 ]] || { echo "FAIL SIGTERM: exit $(docker inspect -f '{{.State.ExitCode}}' "$id")"; exit 1; }
echo "ok   docker stop (SIGTERM to PID 1) drains and exits 0"

# A mounted config and the environment overrides: the file's route answers, the listener
# comes from PREFER_GATEWAY_LISTEN, and `check` names the variables in force.
cfgdir=$(mktemp -d /tmp/prefer-gateway-cfg.XXXXXX)
cat > "$cfgdir/gateway.toml" <<'TOML'
[jobs]
store = "memory"
[[routes]]
name = "mounted"
kind = "proxy"
methods = ["GET"]
path = "/mounted/{*rest}"
upstream = "http://127.0.0.1:9"
TOML
chmod 644 "$cfgdir/gateway.toml"
out=$(docker run --rm -v "$cfgdir/gateway.toml:/etc/prefer-gateway/gateway.toml:ro" \
  -e PREFER_GATEWAY_LISTEN=0.0.0.0:9090 "$GATEWAY_IMAGE" check --config /etc/prefer-gateway/gateway.toml)
grep -q "listen 0.0.0.0:9090" <<<"$out" && grep -q "from the environment: PREFER_GATEWAY_LISTEN" <<<"$out" \
  || { echo "FAIL check in the image: $out"; exit 1; }
id=$(docker run -d -p 127.0.0.1::9090 -v "$cfgdir/gateway.toml:/etc/prefer-gateway/gateway.toml:ro" \
  -e PREFER_GATEWAY_LISTEN=0.0.0.0:9090 "$GATEWAY_IMAGE"); single+=("$id")
port=$(port_of "$id" 9090)
wait_for 20 curl -sS -o /dev/null "http://127.0.0.1:$port/"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/mounted/x")
rm -rf "$cfgdir"
[[ $code == 502 ]] || { echo "FAIL the mounted config's route: GET /mounted/x → $code (want 502: its upstream is closed)"; exit 1; }
echo "ok   a mounted config and PREFER_GATEWAY_LISTEN: check shows them, the file's route answers on :9090"

id=$(docker run -d -p 127.0.0.1::8080 "$GATEWAY_IMAGE" demo); single+=("$id")
port=$(port_of "$id" 8080)
docker rm -f -v "$id" >/dev/null
id=$(docker run -d -p "127.0.0.1:$port:8080" -e "PREFER_GATEWAY_PUBLIC_URL=http://127.0.0.1:$port" "$GATEWAY_IMAGE" demo); single+=("$id")
wait_for 20 sh -c "docker logs '$id' 2>/dev/null | grep -q 'Ctrl-C stops everything'"
line=$(docker logs "$id" 2>/dev/null | grep -m1 "^curl -si -X POST 'http://127.0.0.1:$port/v1/render'" || true)
[[ -n $line ]] || { echo "FAIL the demo's curl lines do not name the published port $port"; docker logs "$id"; exit 1; }
out=$(sh -c "$line --max-time 20")
[[ $out == "HTTP/1.1 200"* ]] || { echo "FAIL the demo's line from the host: $out"; exit 1; }
echo "ok   docker run … demo: reachable from the host, its curl lines name port $port"
wait_for 30 healthy "$id"
echo "ok   the demo is healthy too"

echo "== compose: two replicas, Redis, the demo upstreams"
export GATEWAY_A_PORT=127.0.0.1: GATEWAY_B_PORT=127.0.0.1:
"${compose[@]}" up -d --no-build
a=$("${compose[@]}" ps -q gateway-a); b=$("${compose[@]}" ps -q gateway-b)
for c in "$a" "$b"; do
  wait_for 60 healthy "$c"
done
echo "ok   both replicas healthy"
network=$(docker network ls --format '{{.Name}}' | grep -x "${project}_store")
python3 docker/scenarios.py --a-container "$a" --b-container "$b" --store-network "$network"
