#!/usr/bin/env bash
# Builds the Debian package of image-chat-server with cargo-deb (crates/server/Cargo.toml,
# [package.metadata.deb]): the binary with the release widget built in (the `require-widget`
# feature: the build fails rather than package a server without it), the hardened systemd unit
# crates/server/debian/image-chat.service, and the default configuration in /etc/image-chat/.
# Prints the .deb's path. Usage: scripts/build-deb.sh [--profile PROFILE] [cargo-deb flags…]
# (default profile: `server`, the speed-optimised one; a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo deb --version >/dev/null 2>&1; then
  bash scripts/setup.sh test >&2
fi
profile=server
if [ "${1:-}" = --profile ]; then
  profile=$2
  shift 2
fi
# The package carries pkg/ as the build finds it: rebuild it (seconds when nothing changed) so a
# stale widget is never shipped. With --no-build the binary is taken as already built (and
# carries whatever widget it was built with).
case " $* " in
  *" --no-build "*) ;;
  *) bash scripts/build-widget.sh >&2 ;;
esac
out=${CARGO_TARGET_DIR:-target}/debian
mkdir -p "$out"
cargo deb -p image-chat-server --profile "$profile" -o "$out/" "$@" | tail -n 1
