#!/usr/bin/env bash
# Runs the widget's browser tests (tests/*.rs) in headless Debian Chromium via chromedriver:
# the image widget's (default features), then text mode's DOM glue and text mode itself
# (tests/text.rs, built with the `text` feature, as the text bundle is).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
wasm-pack test --headless --chrome
wasm-pack test --headless --chrome -- --features text --test text
