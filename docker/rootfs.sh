#!/bin/sh
# docker/rootfs.sh SRC DEST — the runtime image's whole file system, cut from a Debian
# bookworm root at SRC (a debootstrap tree, or / inside a debian:bookworm-slim build stage)
# into DEST.
#
# The gateway is one binary whose only dynamic dependencies are glibc and libgcc_s (rustls
# with compiled-in webpki roots: no OpenSSL, no CA bundle). So the image holds exactly:
#   - the shared libraries of the libc6 and libgcc-s1 packages (no gconv modules, no
#     locale data, no programs: no shell, no curl);
#   - /etc/passwd and /etc/group naming root and `gateway` (uid/gid 10001), and an
#     nsswitch.conf for name lookups (glibc's files and dns are built into libc.so.6);
#   - /tmp, /etc/prefer-gateway, and /var/lib/prefer-gateway owned by gateway (the volume).
# Both Dockerfiles run it, so the from-source and the runtime-only builds give the same
# image. POSIX sh only: it runs in a build stage and on the host.
set -eu
src=${1:?usage: rootfs.sh SRC DEST}
dest=${2:?usage: rootfs.sh SRC DEST}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

rm -rf "$dest"
mkdir -p "$dest/usr/lib" "$dest/usr/lib64" "$dest/etc/prefer-gateway" "$dest/tmp" \
  "$dest/var/lib/prefer-gateway" "$dest/usr/local/bin"
# Debian's merged /usr: the loader is /lib64/ld-linux-…, the libraries /lib/<triplet>/.
ln -s usr/lib "$dest/lib"
ln -s usr/lib64 "$dest/lib64"

for pkg in libc6 libgcc-s1; do
  dpkg-query --admindir="$src/var/lib/dpkg" -L "$pkg:$arch" 2>/dev/null \
    || dpkg-query --admindir="$src/var/lib/dpkg" -L "$pkg"
done | grep -E '\.so(\.[0-9]+)*$' | grep -v -e /gconv/ -e /audit/ | sort -u | while read -r f; do
  [ -e "$src$f" ] || [ -L "$src$f" ] || continue
  mkdir -p "$dest$(dirname "$f")"
  cp -a "$src$f" "$dest$f"
done

cat > "$dest/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
gateway:x:10001:10001:prefer-gateway:/var/lib/prefer-gateway:/sbin/nologin
PASSWD
cat > "$dest/etc/group" <<'GROUP'
root:x:0:
gateway:x:10001:
GROUP
printf 'hosts: files dns\n' > "$dest/etc/nsswitch.conf"
chmod 1777 "$dest/tmp"
chown 10001:10001 "$dest/var/lib/prefer-gateway"
