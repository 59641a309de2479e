#!/usr/bin/env bash
# Prints the name of the pinned nightly toolchain the release widget is built with (see
# scripts/build-widget.sh: std is rebuilt for size with `-Zbuild-std`, which needs nightly and
# its `rust-src`). The pin is a date, so every machine builds the same bytes; a toolchain called
# plain `nightly` is used when it is that date, so it is not downloaded twice.
#   scripts/widget-toolchain.sh            prints the toolchain, or fails if none is installed
#   scripts/widget-toolchain.sh --install  installs it (with rust-src) first if missing
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
# The channel's date (its rustc, 1.97.0-nightly e50aa6fba, says 2026-05-19: the commit's date).
NIGHTLY_DATE=2026-05-20
pinned="nightly-$NIGHTLY_DATE"

channel_date() {
  local sysroot
  sysroot=$(rustc +"$1" --print sysroot 2>/dev/null) || return 0
  sed -n 's/^date = "\(.*\)"$/\1/p' "$sysroot/lib/rustlib/multirust-channel-manifest.toml" 2>/dev/null
}

found=""
# `rustup toolchain list`, not `rustc +name`: the latter may install a missing toolchain itself.
if rustup toolchain list | grep -q "^$pinned"; then
  found=$pinned
elif [ "$(channel_date nightly)" = "$NIGHTLY_DATE" ]; then
  found=nightly
fi

if [ -z "$found" ]; then
  if [ "${1:-}" != --install ]; then
    echo "no $pinned toolchain: run scripts/setup.sh (or $0 --install)" >&2
    exit 1
  fi
  echo "[setup] installing the $pinned toolchain with rust-src (for the widget's size build)" >&2
  rustup toolchain install "$pinned" --profile minimal --component rust-src >&2
  found=$pinned
fi

if [ ! -d "$(rustc +"$found" --print sysroot)/lib/rustlib/src/rust/library" ]; then
  if [ "${1:-}" != --install ]; then
    echo "toolchain $found has no rust-src: run scripts/setup.sh (or $0 --install)" >&2
    exit 1
  fi
  echo "[setup] adding rust-src to $found" >&2
  rustup component add rust-src --toolchain "$found" >&2
fi
echo "$found"
