#!/usr/bin/env bash
# docker/image.sh [BINARY] — builds the runtime image (docker/Dockerfile.runtime) from a
# binary built on the host (default target/release/prefer-gateway), tagged IMAGE
# (default prefer-gateway:latest). Makes the base images first when absent (base.sh).
# The context is a staging folder holding only the stripped binary and the default
# config, so nothing else of the checkout is sent to the engine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/prefer-gateway}
IMAGE=${IMAGE:-prefer-gateway:latest}
[[ -x $bin ]] || { echo "no binary at $bin (cargo build --release)" >&2; exit 1; }

bash "$root/docker/base.sh"
ctx=$(mktemp -d /tmp/prefer-gateway-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/target/release" "$ctx/docker"
strip -o "$ctx/target/release/prefer-gateway" "$bin"
cp "$root/docker/gateway.toml" "$ctx/docker/gateway.toml"
DOCKER_BUILDKIT=0 docker build -q -f "$root/docker/Dockerfile.runtime" -t "$IMAGE" "$ctx" >/dev/null
echo "built $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1/1e6}'))"
