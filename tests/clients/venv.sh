#!/usr/bin/env bash
# The Python virtualenv the client tests run in: target/py-venv, created once, each
# requirements file given installed once (a copy of it beside the venv marks it done, so a
# changed pin installs again). .ci/run calls this up front; tests/support/python.rs calls it
# too, so `cargo test` alone works on a fresh clone. Concurrent callers (test binaries, CI)
# serialise on a lock file. Any failure exits non-zero with pip's own output.
#
#   tests/clients/venv.sh tests/clients/requirements.txt [more requirement files...]
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/py-venv
mkdir -p target
exec 9>"$venv.lock"
flock 9

# A venv whose creation did not finish is made again from scratch.
if [ ! -f "$venv/.created" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  touch "$venv/.created"
fi
for req in "$@"; do
  marker="$venv/.installed-$(echo "$req" | tr '/' '_')"
  if [ -f "$marker" ] && cmp -s "$req" "$marker"; then
    continue
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$marker"
done
