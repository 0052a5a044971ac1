#!/usr/bin/env bash
# The soak (issue 18, bullet 5): one gateway, an hour of fixed-rate mixed work (proxy GETs,
# `Prefer: wait=10` waiters on a task route, `respond-async` jobs with callbacks and a status
# read each, synchronous jobs), a config reload every five minutes. examples/soak.rs does the
# work and prints the per-minute table; this script builds it and keeps the table under
# bench/results/soak-<date>.md. Exits non-zero when the run fails (any answer outside the
# contract, a job without its callback, a reload not applied, or RSS / open files spreading
# more than 10 % between minute 10 and the end).
#
#   bench/soak.sh                         # 60 minutes, 200 proxy/s, 20 waiters/s, 20 jobs/s, 5 sync/s
#   MINUTES=12 bench/soak.sh              # a short look (the flatness check needs ≥ 11 minutes)
#   SOAK_ARGS="--proxy 500 --jobs 50" bench/soak.sh
#   SKIP_BUILD=1 bench/soak.sh           # run the binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-60}
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release --bin prefer-gateway --example soak
target="${CARGO_TARGET_DIR:-target}"
out="bench/results/soak-$(date -u +%Y%m%d-%H%M).md"
read -r -a extra <<<"${SOAK_ARGS:-}"
{
  echo "# Soak, $(date -u +%Y-%m-%d) — ${MINUTES} min, commit $(git rev-parse --short HEAD)"
  echo
  echo "Machine: $(nproc) cores; \`bench/soak.sh\` with MINUTES=${MINUTES} ${SOAK_ARGS:-} (rates per second: proxy 200, waiters 20, jobs 20, sync 5 unless overridden). SQLite store, retention 1 min."
  echo
} >"$out"
set +e
"$target/release/examples/soak" --gateway "$target/release/prefer-gateway" --minutes "$MINUTES" "${extra[@]}" | tee -a "$out"
rc=${PIPESTATUS[0]}
set -e
echo "table: $out"
exit "$rc"
