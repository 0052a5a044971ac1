#!/usr/bin/env bash
# Short fuzzing run of every cargo-fuzz target, one after another.
#
#   fuzz/run.sh                         # every target, 60 s each
#   SECONDS_PER_TARGET=300 fuzz/run.sh  # longer
#   fuzz/run.sh prefer_parse            # only the named targets
#
# For each target it: replays the committed crash inputs in fuzz/regressions/<target>/
# (each must pass; a failure is reported and fuzzing goes on), copies the committed seeds
# from fuzz/seeds/<target>/ into the corpus fuzz/corpus/<target>/ (committed, minimised;
# it grows during a run until CMIN=1 shrinks it again), then fuzzes for
# SECONDS_PER_TARGET seconds with the target's dictionary from fuzz/dicts/ and prints
# libFuzzer's final executions count. Exits 1 if any target crashed (libFuzzer writes the
# input to fuzz/artifacts/<target>/; logs go to fuzz/artifacts/logs/), 2 on a build error.
#
# Environment:
#   SECONDS_PER_TARGET  fuzzing time per target (default 60)
#   SANITIZER           cargo fuzz --sanitizer: address (default), leak, memory, thread, none
#   FUZZ_ARGS           extra libFuzzer flags, e.g. "-seed=1 -rss_limit_mb=4096"
#   KEEP_GOING=1        do not stop at the first crash (libFuzzer -fork=1 -ignore_crashes=1):
#                       every crashing input is saved; the exit status is still 1
#   CMIN=1              after fuzzing a target, minimise its corpus in place (cargo fuzz cmin):
#                       do this before committing fuzz/corpus/ (see README.md, "Corpora")
#
# Needs: cargo-fuzz (`cargo install cargo-fuzz --locked`) and a C++ compiler (libFuzzer is
# built from source by libfuzzer-sys).
#
# cargo-fuzz passes nightly-only rustc flags (-Zsanitizer, -Cpasses=sancov-module, ...).
# RUSTC_BOOTSTRAP=1 lets a *stable* toolchain accept them, so no nightly is needed; it is
# set here only for these builds, never for the gateway's own. A nightly toolchain works
# too (the variable is then harmless).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

export RUSTC_BOOTSTRAP=1
seconds="${SECONDS_PER_TARGET:-60}"
sanitizer="${SANITIZER:-address}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

# Release with debug assertions (so overflow checks and debug_assert! fire too).
build_flags=(--release --debug-assertions --sanitizer "$sanitizer")

all_targets=(prefer_parse mode_resolve config_load callback_guard job_path signed_url record_decode
    idempotency_key retry_after cancel_after)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

max_len() {
    case "$1" in
        config_load) echo 16384 ;;
        callback_guard) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

# Crash, timeout and out-of-memory inputs libFuzzer has saved for a target.
count_artifacts() {
    find "artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | wc -l
}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

echo "== building ${targets[*]} (sanitizer: $sanitizer)"
for t in "${targets[@]}"; do
    if ! cargo fuzz build "${build_flags[@]}" "$t"; then
        echo "build of $t failed" >&2
        exit 2
    fi
done

mkdir -p artifacts/logs
declare -A execs result regressed
failed=0
for t in "${targets[@]}"; do
    log="artifacts/logs/$t.log"
    mkdir -p "corpus/$t" "artifacts/$t"
    cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true

    regressions=()
    if [ -d "regressions/$t" ]; then
        while IFS= read -r -d '' f; do regressions+=("$f"); done \
            < <(find "regressions/$t" -type f ! -name '.*' ! -name '*.md' -print0 | sort -z)
    fi
    if [ "${#regressions[@]}" -gt 0 ]; then
        echo "== $t: replaying ${#regressions[@]} regression input(s)"
        if ! cargo fuzz run "${build_flags[@]}" "$t" "${regressions[@]}" \
            >"artifacts/logs/$t.regressions.log" 2>&1; then
            echo "   REGRESSION: see fuzz/artifacts/logs/$t.regressions.log" >&2
            grep -m 1 -A 4 "panicked at" "artifacts/logs/$t.regressions.log" >&2 \
                || tail -n 30 "artifacts/logs/$t.regressions.log" >&2
            regressed[$t]="regression FAILED; fuzzing: "
            failed=1
        fi
    fi

    echo "== $t: fuzzing for ${seconds}s"
    dict=()
    [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
    keep=()
    [ -n "${KEEP_GOING:-}" ] && keep=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    before="$(count_artifacts "$t")"
    status=0
    cargo fuzz run "${build_flags[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 \
        -print_final_stats=1 "${dict[@]}" "${keep[@]}" "${extra[@]}" >"$log" 2>&1 || status=$?
    n="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)"
    if [ -z "$n" ]; then
        # Fork mode (KEEP_GOING) prints no final stats; its last status line has the count.
        n="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    fi
    execs[$t]="${n:-?}"
    crashes="$(count_artifacts "$t")"
    crashes=$((crashes - before))
    if [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ]; then
        result[$t]="${regressed[$t]:-}ok"
    elif [ -n "${KEEP_GOING:-}" ]; then
        failed=1
        result[$t]="${regressed[$t]:-}$crashes new crash input(s) in fuzz/artifacts/$t/ (KEEP_GOING, exit $status)"
        echo "   $crashes crash(es) in $t; log: fuzz/artifacts/logs/$t.log" >&2
    else
        failed=1
        artifact="$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //' || true)"
        result[$t]="${regressed[$t]:-}CRASH ${artifact:-(exit $status, no artifact)}"
        echo "   CRASH in $t (exit $status); log: fuzz/artifacts/logs/$t.log" >&2
        grep -m 1 -A 8 -E "panicked at|ERROR: (libFuzzer|AddressSanitizer)" "$log" >&2 || tail -n 30 "$log" >&2
        if [ -n "$artifact" ]; then
            echo "   minimise: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin ${build_flags[*]} $t $artifact" >&2
        fi
    fi
    if [ -n "${CMIN:-}" ]; then
        # Keeps a smallest set of inputs with the same coverage (set-cover merge: about a
        # third fewer files than the default greedy merge), so the corpus stays small
        # enough to commit.
        if cargo fuzz cmin "${build_flags[@]}" "$t" "corpus/$t" -- -max_len="$(max_len "$t")" \
            -set_cover_merge=1 \
            >"artifacts/logs/$t.cmin.log" 2>&1; then
            echo "   $t: corpus minimised to $(find "corpus/$t" -type f | wc -l) inputs"
        else
            echo "   cmin of $t failed: see fuzz/artifacts/logs/$t.cmin.log" >&2
        fi
    fi
    echo "   $t: ${execs[$t]} executions, ${result[$t]}"
done

echo
printf '%-16s %14s  %s\n' target executions result
for t in "${targets[@]}"; do
    printf '%-16s %14s  %s\n' "$t" "${execs[$t]}" "${result[$t]}"
done
exit "$failed"
