#!/usr/bin/env bash
# Packs the npm package `image-chat` (the widget as an ES module for bundlers): the entry and
# types from npm/ (index.* and text.* for `image-chat/text`), the release widget and its text
# bundle from pkg/ (scripts/build-widget.sh: the wasm-bindgen glue, the wasm, its .d.ts, the JS
# snippets, the locale chunks), the version from Cargo.toml. Staged in
# target/npm/image-chat/, packed with `npm pack` into target/npm/; prints the tarball's path.
# `npm publish target/npm/image-chat-<version>.tgz` publishes it.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
for file in image_chat.js image_chat_bg.wasm image_chat.d.ts \
  image_chat_text.js image_chat_text_bg.wasm image_chat_text.d.ts; do
  if [ ! -f "pkg/$file" ]; then
    echo "pack-npm: pkg/$file is missing: run scripts/build-widget.sh first" >&2
    exit 1
  fi
done
stage="$target_dir/npm/image-chat"
rm -rf "$stage"
mkdir -p "$stage"
cp npm/package.json npm/README.md npm/index.js npm/index.d.ts npm/text.js npm/text.d.ts "$stage/"
cp pkg/image_chat.js pkg/image_chat.d.ts pkg/image_chat_bg.wasm "$stage/"
# Text mode's bundle (the widget plus text mode), the `image-chat/text` entry.
cp pkg/image_chat_text.js pkg/image_chat_text.d.ts pkg/image_chat_text_bg.wasm "$stage/"
# The glue imports its snippets by relative path: keep their tree (JS only, not the twins).
(cd pkg && find snippets -name '*.js' 2>/dev/null) | while read -r snippet; do
  mkdir -p "$stage/$(dirname "$snippet")"
  cp "pkg/$snippet" "$stage/$snippet"
done
# The languages besides English, imported on demand by the snippet src/dom/lazy.js at
# `../../../../locales/<tag>.js` (bundlers emit each as its own chunk).
mkdir -p "$stage/locales"
cp pkg/locales/*.js "$stage/locales/"
version=$(awk -F'"' '/^\[workspace.package\]/ { p = 1 } p && /^version/ { print $2; exit }' Cargo.toml)
(cd "$stage" && npm pkg set version="$version")
tarball=$(npm pack --silent --pack-destination "$target_dir/npm" "$stage" | tail -n 1)
echo "$target_dir/npm/$tarball"
