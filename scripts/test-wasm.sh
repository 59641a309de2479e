#!/usr/bin/env bash
# Runs the widget's browser tests (tests/*.rs) in headless Debian Chromium via chromedriver.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
wasm-pack test --headless --chrome
