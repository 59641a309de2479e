#!/usr/bin/env bash
# Builds the widget in release into pkg/ (which the server serves at /pkg/) and prints its size
# (wasm + JS glue, raw and gzip -9). Size is the goal (docs/BENCHMARKS.md §6a), so:
# - the pinned nightly (scripts/widget-toolchain.sh) rebuilds std with the widget
#   (`-Zbuild-std`), so LTO sees all of it, and with `panic = immediate-abort`: a panic is one
#   `unreachable` instruction, with no message formatting, locations or hooks linked;
# - the `release` profile: opt-level "z", fat LTO, one codegen unit, stripped;
# - wasm-bindgen (the CLI at Cargo.lock's version) writes the JS glue, then binaryen's wasm-opt
#   (npm `binaryen`) shrinks the wasm, scripts/minify-imports.mjs shortens the import names
#   (wasm-bindgen's are long and hashed) in the wasm and the glue, and terser (npm) minifies the
#   JS.
# Tests (`wasm-pack test`, clippy) stay on stable: only this size build needs nightly.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

# Only the wasm target's crates get these flags (cargo does not pass RUSTFLAGS to build scripts
# and proc macros when --target is given). -Zlocation-detail=none drops the file names and lines
# that `#[track_caller]` code still embeds; -Zfmt-debug=none makes `Debug` print nothing, so no
# stray `{:?}` can pull `core::fmt` back in (the widget never shows Debug output). std's
# `optimize_for_size` feature picks its smaller implementations (e.g. of sorting).
build_wasm() {
  if toolchain=$(bash scripts/widget-toolchain.sh); then
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
      cargo +"$toolchain" build --lib --release --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size "$@"
  else
    # A machine that cannot get the pinned nightly still gets a working widget, only larger
    # (about 11 KB gzipped: docs/BENCHMARKS.md §6a).
    echo "build-widget: WARNING: no pinned nightly, building on stable with the prebuilt std (larger)" >&2
    cargo build --lib --release --target wasm32-unknown-unknown "$@"
  fi
}
release_dir=$target_dir/wasm32-unknown-unknown/release
# Text mode (cargo feature `text`, docs/WIDGET.md "Text mode"): the same crate with text mode,
# a second bundle the loader fetches instead of this one only on pages with an article to
# discuss. Built first and copied aside (both builds write image_chat.wasm); the copy's name
# gives its glue's: image_chat_text.js.
build_wasm --features text
cp "$release_dir/image_chat.wasm" "$release_dir/image_chat_text.wasm"
build_wasm

bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $bindgen_version"; then
  echo "wasm-bindgen $bindgen_version is needed (Cargo.lock): run scripts/setup.sh" >&2
  exit 1
fi
rm -rf pkg

# finish_piece WASM: turns one cargo-built wasm into what ships in pkg/: wasm-bindgen's glue
# (named after the wasm: image_chat.js, image_chat_bg.wasm), wasm-opt, short import and export
# names, minified JS. A lazily loaded piece built from another crate (its own wasm) goes
# through the same steps with one more call (docs/WIDGET.md, "What a page downloads").
finish_piece() {
  local built=$1 name
  name=$(basename "$built" .wasm)
  wasm-bindgen --target web --out-dir pkg "$built"
  local wasm=pkg/${name}_bg.wasm glue=pkg/${name}.js
  # The --enable flags: the features rustc's wasm32 target enables by default and the wasm uses
  # (wasm-opt refuses instructions it was not told about). --converge repeats -Oz while it
  # still shrinks the module. --low-memory-unused lets wasm-opt fold constant offsets into
  # loads and stores: the low 1 KiB of memory is the far end of the 1 MiB stack (rustc puts
  # the stack first), which nothing reaches short of a stack overflow. -ocimfs=20: a function
  # with one caller is inlined into it only up to 20 instructions (binaryen's default inlines
  # any size): +3.4 KB raw but -1.5 KB gzipped, as one huge body compresses worse than its
  # parts (docs/BENCHMARKS.md §6a; 15 gave the same, 5, 10, 30, 50 and 100 less). With that
  # cap, -Os is 148 B smaller gzipped than -Oz (without it, larger).
  wasm-opt -Os --converge --low-memory-unused --one-caller-inline-max-function-size=20 \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-multivalue --enable-reference-types \
    "$wasm" -o "$wasm"
  node scripts/minify-imports.mjs "$wasm" "$glue"
  # The JS is shipped as written: wasm-bindgen's glue carries its doc comments, long local
  # names and helpers the widget never calls, so terser (npm) minifies it as an ES module
  # (exports and imports keep their names; the d.ts is unchanged). Measured: glue 6,040 ->
  # 3,910 B gzipped (docs/BENCHMARKS.md §6a).
  minify "$glue"
}

# minify FILE...: terser on ES modules, in place (snippets: 733 -> 321 B gzipped).
minify() {
  for js in "$@"; do
    terser "$js" --module --compress passes=2 --mangle --comments '/@ts-self-types/' -o "$js"
  done
}

# twins FILE...: the compressed twins the server sends, chosen by the browser's
# Accept-Encoding: gzip -9 and Brotli (quality 11, scripts/precompress.mjs).
twins() {
  gzip -9 -n -k -f "$@"
  node scripts/precompress.mjs "$@"
}

finish_piece "$release_dir/image_chat_text.wasm"
finish_piece "$release_dir/image_chat.wasm"
# Text mode's glue snippet (src/text/glue.js) ships with the text bundle only.
snippets=$(find pkg/snippets -name '*.js' ! -path '*/src/text/*' 2>/dev/null)
text_snippets=$(find pkg/snippets -path '*/src/text/*' -name '*.js' 2>/dev/null)
minify $snippets $text_snippets

# What every page downloads: the wasm, the glue and the hand-written JS modules the glue
# imports (pkg/snippets/, e.g. src/dom/bulk.js). gzip -9 is the figure older entries of
# docs/BENCHMARKS.md are stated in; Brotli is what browsers get.
shipped=(pkg/image_chat_bg.wasm pkg/image_chat.js $snippets)
raw=0
gz=0
gzip -9 -n -k -f "${shipped[@]}"
for file in "${shipped[@]}"; do
  raw=$(( raw + $(wc -c < "$file") ))
  gz=$(( gz + $(wc -c < "$file.gz") ))
done
echo "widget size: wasm + JS glue + snippets = $raw bytes raw, $gz bytes gzipped"
node scripts/precompress.mjs "${shipped[@]}"

# What a page with an article downloads instead (text mode): the text bundle's wasm and glue,
# the same snippets and text mode's own.
text_shipped=(pkg/image_chat_text_bg.wasm pkg/image_chat_text.js $text_snippets)
gzip -9 -n -k -f "${text_shipped[@]}"
raw=0
gz=0
for file in "${text_shipped[@]}" $snippets; do
  raw=$(( raw + $(wc -c < "$file") ))
  gz=$(( gz + $(wc -c < "$file.gz") ))
done
printf 'text bundle size (pages with [data-collab-chat], instead of the above): %s bytes raw, %s bytes gzipped; ' "$raw" "$gz"
node scripts/precompress.mjs "${text_shipped[@]}"

# The languages other than English, fetched only by pages that speak them (src/locales.rs):
# each locales/<tag>.json becomes the ES module pkg/locales/<tag>.js (`export default {…}`,
# minified). www/embed.js prefetches the page's language: its list must name exactly these.
mkdir -p pkg/locales
tags=()
for json in locales/*.json; do
  tag=$(basename "$json" .json)
  tags+=("$tag")
  node -e 'const fs = require("fs");
    const table = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    process.stdout.write("export default " + JSON.stringify(table) + ";\n");' "$json" > "pkg/locales/$tag.js"
done
# The two lists of these chunks in JS must name exactly them.
listed=$(sed -n 's/^ *var LOCALES = \[\(.*\)\];.*/\1/p' www/embed.js | tr -d '" ' | tr ',' ' ')
imported=$(sed -n "s|.*import('\.\./\.\./\.\./\.\./locales/\([a-z]*\)\.js').*|\1|p" src/dom/lazy.js | tr '\n' ' ')
if [ "$listed" != "${tags[*]}" ] || [ "${imported% }" != "${tags[*]}" ]; then
  echo "build-widget: www/embed.js LOCALES ($listed) and src/dom/lazy.js ($imported) must list locales/*.json (${tags[*]})" >&2
  exit 1
fi
for chunk in pkg/locales/*.js; do
  printf 'locale chunk %s (at most one per page): ' "$chunk"
  twins "$chunk"
done

# The loader the script tag names (`/embed.js`), beside the widget it loads, so that pkg/ is the
# whole widget: the server builds it into its binary from here (crates/server/build.rs) and
# `--pkg-dir` serves it from here. Not in the size figure above (it is the same before and
# after any widget change).
cp www/embed.js pkg/embed.js
gzip -9 -n -k -f pkg/embed.js
node scripts/precompress.mjs pkg/embed.js >/dev/null
# Cargo watches pkg/ only once it exists (see build.rs): make a server built before it existed
# pick it up on its next build.
touch crates/server/build.rs
