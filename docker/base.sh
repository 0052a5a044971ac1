#!/usr/bin/env bash
# docker/base.sh — makes the two local base images when they are absent. There is no image
# registry to pull from, so both are built from Debian's packages: one `debootstrap
# --variant=minbase` of bookworm (with redis-server), imported twice:
#
#   prefer-gateway-runtime-base:bookworm  rootfs.sh's cut of it: glibc, libgcc_s, a passwd
#                                         naming `gateway` (10001); no shell (about 5 MB)
#   prefer-gateway-redis:bookworm         the tree itself, trimmed: redis-server as `redis`,
#                                         data in /var/lib/redis (for docker/compose.yml)
#
# Run as root (debootstrap needs it); installs debootstrap with apt-get when missing.
# DEBIAN_MIRROR overrides the mirror (default: deb.debian.org). FORCE=1 remakes both.
set -euo pipefail
cd "$(dirname "$0")"

RUNTIME_BASE=${RUNTIME_BASE:-prefer-gateway-runtime-base:bookworm}
REDIS_IMAGE=${REDIS_IMAGE:-prefer-gateway-redis:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }
if [[ ${FORCE:-0} != 1 ]] && have "$RUNTIME_BASE" && have "$REDIS_IMAGE"; then
  echo "base images present: $RUNTIME_BASE $REDIS_IMAGE"
  exit 0
fi

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d /tmp/prefer-gateway-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "debootstrap bookworm (minbase + redis-server) from $MIRROR"
debootstrap --variant=minbase --include=redis-server bookworm "$work/root" "$MIRROR" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }

sh ./rootfs.sh "$work/root" "$work/runtime"
tar --numeric-owner -C "$work/runtime" -c . |
  docker import -c 'USER 10001:10001' - "$RUNTIME_BASE" >/dev/null
echo "made $RUNTIME_BASE"

# The Redis image: the tree without what a server never reads.
rm -rf "$work/root"/var/cache/apt/* "$work/root"/var/lib/apt/lists/* \
  "$work/root"/usr/share/doc "$work/root"/usr/share/man "$work/root"/usr/share/locale \
  "$work/root"/usr/share/info
tar --numeric-owner -C "$work/root" -c . |
  docker import \
    -c 'USER redis' \
    -c 'WORKDIR /var/lib/redis' \
    -c 'EXPOSE 6379' \
    -c 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/var/lib/redis"]' \
    - "$REDIS_IMAGE" >/dev/null
echo "made $REDIS_IMAGE"
