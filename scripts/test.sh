#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then runs formatting and
# lint checks, every native test (protocol, sync engine, server over real sockets), the widget's
# browser tests in headless Chromium, the release build of the widget, the end-to-end suite
# (real widget in Debian's Chromium against real server processes; also the npm package built
# into a Vite app and the axe-core accessibility check), and the Debian package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --all -- --check
step "clippy (native, all targets)"
cargo clippy --workspace --all-targets -- -D warnings
step "clippy (widget on wasm32)"
cargo clippy -p image-chat --target wasm32-unknown-unknown -- -D warnings
# Text mode (the text bundle's `text` feature) too.
cargo clippy -p image-chat --target wasm32-unknown-unknown --features text -- -D warnings
step "native tests"
cargo test --workspace
cargo test -p image-chat --lib --features text
step "benchmark smoke run (load generator, small N, bounded)"
bash scripts/bench-smoke.sh
step "fuzz smoke: decode_client_frame for 30 s (cargo-fuzz, nightly)"
bash scripts/fuzz-smoke.sh 30
step "widget browser tests (headless Chromium)"
bash scripts/test-wasm.sh
step "widget release build"
bash scripts/build-widget.sh
step "end-to-end (playwright-core + /usr/bin/chromium, real server processes)"
cargo build -p image-chat-server
export IMAGE_CHAT_SERVER_BIN="${IMAGE_CHAT_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/image-chat-server}"
node --experimental-websocket --test --test-concurrency=1 e2e/
step "Debian package (cargo-deb): contents, unit (systemd-analyze verify), packaged binary"
bash scripts/test-deb.sh
