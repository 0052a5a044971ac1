#!/usr/bin/env bash
# docker/base.sh — makes the two local base images when they are absent. There is no image
# registry to pull from, so both are cut from Debian bookworm's packages:
#
#   prefer-gateway-runtime-base:bookworm  rootfs.sh's cut: glibc, libgcc_s, a passwd
#                                         naming `gateway` (10001); no shell (about 5 MB)
#   prefer-gateway-redis:bookworm         redis-server and redis-cli with the libraries
#                                         they load, as `redis`, data in /var/lib/redis
#                                         (for docker/compose.yml)
#
# Where from (BASE_FROM):
#   host         the machine's own bookworm root, when it is Debian bookworm with
#                redis-server installed (the CI machine is: .ci/run installs it). Seconds,
#                no network; the same packages a debootstrap would fetch today.
#   debootstrap  one `debootstrap --variant=minbase --include=redis-server bookworm` from
#                the mirror (DEBIAN_MIRROR, default deb.debian.org): any Linux host with
#                network; minutes. The Redis image is then the whole trimmed tree.
#   auto         (default) host when it qualifies, else debootstrap.
# Run as root (debootstrap and the chown need it). FORCE=1 remakes both.
set -euo pipefail
cd "$(dirname "$0")"

RUNTIME_BASE=${RUNTIME_BASE:-prefer-gateway-runtime-base:bookworm}
REDIS_IMAGE=${REDIS_IMAGE:-prefer-gateway-redis:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
FROM=${BASE_FROM:-auto}

have() { docker image inspect "$1" >/dev/null 2>&1; }
if [[ ${FORCE:-0} != 1 ]] && have "$RUNTIME_BASE" && have "$REDIS_IMAGE"; then
  echo "base images present: $RUNTIME_BASE $REDIS_IMAGE"
  exit 0
fi

host_qualifies() {
  grep -qx 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null &&
    dpkg-query -W -f '${Status}' redis-server 2>/dev/null | grep -q 'ok installed' &&
    [[ -x /usr/bin/redis-server && -x /usr/bin/redis-cli ]]
}
if [[ $FROM == auto ]]; then
  if host_qualifies; then FROM=host; else FROM=debootstrap; fi
fi

redis_import() {  # redis_import TREE: the Redis image from a root file system
  tar --numeric-owner -C "$1" -c . |
    docker import \
      -c 'USER redis' \
      -c 'WORKDIR /var/lib/redis' \
      -c 'EXPOSE 6379' \
      -c 'CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/var/lib/redis"]' \
      - "$REDIS_IMAGE" >/dev/null
  echo "made $REDIS_IMAGE"
}

work=$(mktemp -d /tmp/prefer-gateway-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
case $FROM in
host)
  echo "cutting the base images from this host's bookworm root"
  root=/
  ;;
debootstrap)
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  echo "debootstrap bookworm (minbase + redis-server) from $MIRROR"
  root=$work/root
  debootstrap --variant=minbase --include=redis-server bookworm "$root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; exit 1; }
  ;;
*) echo "docker/base.sh: BASE_FROM is host, debootstrap or auto, not '$FROM'" >&2; exit 2 ;;
esac

sh ./rootfs.sh "$root" "$work/runtime"
tar --numeric-owner -C "$work/runtime" -c . |
  docker import -c 'USER 10001:10001' - "$RUNTIME_BASE" >/dev/null
echo "made $RUNTIME_BASE"

if [[ $FROM == host ]]; then
  # The runtime cut (copied, not cut again), plus the two programs, every library ldd names for them (redis links
  # jemalloc, OpenSSL, libsystemd and what those pull in), and a `redis` user.
  cp -a "$work/runtime" "$work/redis"
  cp -a /usr/bin/redis-check-rdb /usr/bin/redis-server /usr/bin/redis-cli "$work/redis/usr/local/bin/"
  ldd /usr/bin/redis-check-rdb /usr/bin/redis-cli | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' |
    sort -u | while read -r lib; do
      real=$(readlink -f "$lib")
      mkdir -p "$work/redis$(dirname "$lib")"
      cp -L "$real" "$work/redis$lib"
    done
  echo 'redis:x:999:999:redis:/var/lib/redis:/sbin/nologin' >>"$work/redis/etc/passwd"
  echo 'redis:x:999:' >>"$work/redis/etc/group"
  mkdir -p "$work/redis/var/lib/redis"
  chown 999:999 "$work/redis/var/lib/redis"
  redis_import "$work/redis"
else
  # The tree itself, without what a server never reads.
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
    "$root"/usr/share/man "$root"/usr/share/locale "$root"/usr/share/info
  redis_import "$root"
fi
