#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target of fuzz/ once, writes the seed corpora
# (fuzz/corpus/<target>/, from the real API and docs/vectors/*.json), then fuzzes each target
# for FUZZ_SECONDS seconds (default 5). Fails if any target finds a crash, leak, timeout or
# assertion failure; the input is left under fuzz/artifacts/<target>/.
#
#   bash scripts/fuzz-smoke.sh                 # from the repository root
#   FUZZ_SECONDS=60 bash scripts/fuzz-smoke.sh # longer
#   FUZZ_TARGETS="envelope_decode signed_verify" bash scripts/fuzz-smoke.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
# Not a fuzz target: the seed generator lives in the same package.
SEED_BIN=make_seeds

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# Nightly if installed; otherwise stable with RUSTC_BOOTSTRAP (cargo-fuzz passes -Z flags).
# FUZZ_TOOLCHAIN picks one explicitly (e.g. FUZZ_TOOLCHAIN=stable to test the fallback).
toolchain="${FUZZ_TOOLCHAIN:-}"
if [[ -z "$toolchain" ]]; then
    if cargo +nightly --version >/dev/null 2>&1; then
        toolchain=nightly
    else
        echo "== no nightly toolchain: using RUSTC_BOOTSTRAP=1 with stable"
        toolchain=stable
    fi
fi
if [[ "$toolchain" == nightly* ]]; then
    FUZZ=(cargo "+$toolchain" fuzz)
else
    FUZZ=(env RUSTC_BOOTSTRAP=1 cargo "+$toolchain" fuzz)
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
# cargo-fuzz builds for the host triple explicitly, into fuzz/target unless CARGO_TARGET_DIR says
# otherwise.
bin_dir="${CARGO_TARGET_DIR:-fuzz/target}/${host}/release"

echo "== building fuzz targets ($("${FUZZ[@]}" --version))"
start=$SECONDS
"${FUZZ[@]}" build
echo "   built in $((SECONDS - start)) s"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <("${FUZZ[@]}" list | grep -vx "$SEED_BIN")
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

echo "== writing seed corpora"
if [[ ! -x "$bin_dir/$SEED_BIN" ]]; then
    echo "seed generator not found at $bin_dir/$SEED_BIN" >&2
    exit 1
fi
"$bin_dir/$SEED_BIN" fuzz/corpus docs/vectors

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed=()
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${FUZZ_SECONDS} s"
    mkdir -p "fuzz/corpus/$t"
    # -timeout: one input taking this long counts as a failure (a hang), not a stall.
    if "${FUZZ[@]}" run "$t" -- -max_total_time="$FUZZ_SECONDS" -timeout=10 \
        >"$log_dir/$t.log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log_dir/$t.log" | sed 's/^/   /' || true
    else
        echo "   FAILED: $t" >&2
        mkdir -p "fuzz/artifacts/$t"
        cp "$log_dir/$t.log" "fuzz/artifacts/$t/fuzz.log"
        # The panic or sanitizer report and the input, not cargo-fuzz's own backtrace.
        grep -E -A4 "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY:" \
            "$log_dir/$t.log" | head -n 30 | sed 's/^/   | /' >&2 || true
        grep -E -A2 "^Failing input:|^Output of .std::fmt::Debug.:" "$log_dir/$t.log" \
            | grep -v '^--$' | sed 's/^/   | /' >&2 || true
        echo "   full log: fuzz/artifacts/$t/fuzz.log" >&2
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== fuzz smoke test FAILED: ${failed[*]}" >&2
    for t in "${failed[@]}"; do
        for f in "fuzz/artifacts/$t"/*; do
            if [[ -f "$f" && "$f" != */fuzz.log ]]; then echo "   $f" >&2; fi
        done
    done
    echo "   reproduce: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE" >&2
    exit 1
fi
echo "== fuzz smoke test passed (${#targets[@]} targets, ${FUZZ_SECONDS} s each)"
