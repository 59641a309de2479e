#!/usr/bin/env bash
# Widget benchmark in headless Chromium (mount, render N discussions from a snapshot, apply one
# remote event). Builds what it needs first. Extra arguments go to e2e/bench-widget.mjs, e.g.
#   bash scripts/bench-widget.sh --markers 1000 --runs 5 --json /tmp/widget-bench.json
#   bash scripts/bench-widget.sh --markers 1000 --runs 7 --thread-time     (+ main-thread CPU)
#   bash scripts/bench-widget.sh --markers 1000 --runs 5 --lazy-compile    (+ wasm compiled on first call)
#   bash scripts/bench-widget.sh --markers 1000 --runs 5 --cpu-profile /tmp/snapshot.cpuprofile
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
bash scripts/build-widget.sh
cargo build -p image-chat-server
# The server just built (e2e/harness.mjs looks in ./target unless told otherwise).
export IMAGE_CHAT_SERVER_BIN="${IMAGE_CHAT_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/debug/image-chat-server}"
node --experimental-websocket e2e/bench-widget.mjs "$@"
