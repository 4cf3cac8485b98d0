#!/usr/bin/env bash
# Fuzzes Confab's token and request parsing.
#
#   scripts/fuzz.sh [TARGET...]
#
# Targets: token_parse, request_decode (default: both). With cargo-fuzz and
# a nightly toolchain installed, each target runs under libFuzzer for
# FUZZ_SECONDS (default 60). Otherwise the stable runner replays the corpus
# and FUZZ_ITERATIONS seeded mutations per target (default 20000,
# seed FUZZ_SEED, default 1). A panic fails the script with the input.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(token_parse request_decode)
fi

if cargo +nightly fuzz --version >/dev/null 2>&1; then
    cd "$root/fuzz"
    for target in "${targets[@]}"; do
        echo "fuzz: $target under libFuzzer for ${FUZZ_SECONDS:-60}s"
        # libFuzzer writes new inputs to the first folder, so the
        # committed seeds in corpus/ stay as they are.
        mkdir -p "target/corpus/$target"
        cargo +nightly fuzz run --features libfuzzer "$target" \
            "target/corpus/$target" "corpus/$target" \
            -- -max_total_time="${FUZZ_SECONDS:-60}"
    done
    exit 0
fi

echo "fuzz: cargo-fuzz or nightly not found; running the stable runner"
# Shares the main build folder, so dependencies already compiled for the
# server with the same features are reused.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
filters=()
for target in "${targets[@]}"; do
    filters+=("${target}_never_panics")
done
for filter in "${filters[@]}"; do
    cargo test --manifest-path "$root/fuzz/Cargo.toml" --test stable \
        -- --exact "$filter" --nocapture
done
