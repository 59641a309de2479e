#!/usr/bin/env bash
# Widget benchmark in headless Chromium (mount, render N discussions from a snapshot, apply one
# remote event). Builds what it needs first. Extra arguments go to e2e/bench-widget.mjs, e.g.
#   bash scripts/bench-widget.sh --markers 1000 --runs 5 --json /tmp/widget-bench.json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
bash scripts/build-widget.sh
cargo build -p image-chat-server
node --experimental-websocket e2e/bench-widget.mjs "$@"
