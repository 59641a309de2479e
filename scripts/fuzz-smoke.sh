#!/usr/bin/env bash
# A short, bounded fuzzing run of the client-frame decoder (fuzz/fuzz_targets/). Installs
# cargo-fuzz if missing; needs a nightly toolchain (libFuzzer instrumentation) and skips, loudly,
# without one. Usage: scripts/fuzz-smoke.sh [seconds]   (default 30; see docs/SECURITY.md for
# a longer run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SECONDS_TO_RUN="${1:-30}"
TARGET=decode_client_frame

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "################################################################"
    echo "## fuzz-smoke: SKIPPED — no nightly toolchain (rustup toolchain install nightly)"
    echo "################################################################"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

# Seeds: the protocol's golden client frames (committed under fuzz/corpus/). The fuzzer adds
# what it finds to the same directory (ignored by git).
cd fuzz
# Its own target directory: the fuzz build (nightly, sanitizer flags) shares nothing with the
# workspace build anyway.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target}"
# libFuzzer prints a line per coverage step (thousands in 30 s): keep them in a log and show
# its tail, all of it again on failure.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo +nightly fuzz run "$TARGET" corpus/"$TARGET" -- \
    -max_total_time="$SECONDS_TO_RUN" -max_len=40000 -timeout=10 -rss_limit_mb=2048 \
    >"$log" 2>&1; then
    tail -n 120 "$log"
    echo "fuzz-smoke: $TARGET FAILED (crash input saved under fuzz/artifacts/)" >&2
    exit 1
fi
tail -n 8 "$log"
echo "fuzz-smoke: $TARGET ran ${SECONDS_TO_RUN}s without a crash"
