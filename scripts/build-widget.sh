#!/usr/bin/env bash
# Builds the widget in release (size-optimised: opt-level "z", LTO, wasm-opt -Oz from the npm
# `binaryen` package) into pkg/, which the server serves at /pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# wasm-pack leaves snippets of earlier builds behind: start clean so the size below is right.
rm -rf pkg/snippets
wasm-pack build --release --target web --out-dir pkg --no-pack
wasm=$(ls pkg/*_bg.wasm)
glue=${wasm%_bg.wasm}.js
raw=$(( $(wc -c < "$wasm") + $(wc -c < "$glue") ))
gz=$(( $(gzip -9 -c "$wasm" | wc -c) + $(gzip -9 -c "$glue" | wc -c) ))
# Hand-written JS modules the glue imports (pkg/snippets/, e.g. src/dom/bulk.js) are shipped too.
for js in $(find pkg/snippets -name '*.js' 2>/dev/null); do
  raw=$(( raw + $(wc -c < "$js") ))
  gz=$(( gz + $(gzip -9 -c "$js" | wc -c) ))
done
echo "widget size: wasm + JS glue + snippets = $raw bytes raw, $gz bytes gzipped"
