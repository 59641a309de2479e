#!/usr/bin/env bash
# Where the widget's bytes are (docs/BENCHMARKS.md, "Widget weight"): builds the release widget
# with the flags scripts/build-widget.sh uses but keeping function names, in its own target
# directory (the size build's cache stays as it is), runs wasm-bindgen on it, and prints
# twiggy's largest items and the bytes per crate and module. Bytes are before wasm-opt (which
# takes a few % more off, and more by inlining); compare builds with each other, not with pkg/.
#   bash scripts/widget-twiggy.sh            # top items and per-module totals
#   bash scripts/widget-twiggy.sh OLD.wasm   # ... and `twiggy diff` against an earlier run's
#                                            # wasm (its path is printed at the end)
# twiggy is installed into ~/.cargo/bin once, like the other tools (scripts/setup.sh). The
# cargo flags are build-widget.sh's (see the reasons there).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v twiggy >/dev/null 2>&1; then
  echo "[widget-twiggy] installing twiggy (a minute, once)" >&2
  cargo install twiggy --version 0.8.0 --locked
fi
toolchain=$(bash scripts/widget-toolchain.sh)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}/widget-names
CARGO_TARGET_DIR=$target_dir CARGO_PROFILE_RELEASE_STRIP=false \
  RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
  cargo +"$toolchain" build --lib --release --target wasm32-unknown-unknown \
  -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
out="$target_dir/bindgen"
rm -rf "$out"
wasm-bindgen --target web --keep-debug --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/release/image_chat.wasm" 2>/dev/null
wasm="$target_dir/image_chat.$(date +%Y%m%d-%H%M%S).wasm"
cp "$out/image_chat_bg.wasm" "$wasm"

twiggy top -n 25 "$wasm"
# Totals per crate and module (`image_chat::ui`, `alloc::vec`…), names' section left out.
twiggy top -n 1000000 -f csv "$wasm" | node -e '
  const rows = require("fs").readFileSync(0, "utf8").trim().split("\n").slice(1);
  const total = new Map();
  for (const row of rows) {
    const tail = /,(\d+),[\d.]+,\d*,[\d.]*$/;
    const size = Number(row.match(tail)?.[1] ?? 0);
    const name = row.replace(tail, "").replace(/^"|"$/g, "");
    if (name.includes("function names") || name.startsWith("Σ")) continue;
    const m = name.match(/^[<"]*([a-z_]+)\[[0-9a-f]+\]::([a-z_0-9]+)/);
    const key = m ? `${m[1]}::${m[2]}` : name.startsWith("data segment") ? "(data)" : "(other)";
    total.set(key, (total.get(key) ?? 0) + size);
  }
  console.log("\nbytes per crate::module (largest 30)");
  for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(String(v).padStart(9), k);
  }'
if [ $# -gt 0 ]; then
  echo
  twiggy diff -n 40 "$1" "$wasm"
fi
echo
echo "this build's wasm (for a later diff): $wasm"
