#!/usr/bin/env bash
# Installs, if missing, every tool the demo (`setup.sh demo`) or the test suite (`setup.sh test`)
# needs on a fresh machine: the wasm32 Rust target, the pinned nightly with rust-src for the
# widget's release build (scripts/widget-toolchain.sh), wasm-bindgen-cli at the exact version in
# Cargo.lock, wasm-pack, the npm dev tools (binaryen's wasm-opt, terser, playwright-core), and for
# tests Debian's chromium + chromium-driver and a running Redis (Debian's redis-server, started
# when nothing answers on 6379). Idempotent and quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[setup] %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The release widget is built with a pinned nightly and its rust-src (-Zbuild-std, for size):
# installed here if missing (an installed `nightly` of that date is reused). Without it the
# widget still builds, on stable and larger (scripts/build-widget.sh says so).
if ! bash scripts/widget-toolchain.sh --install >/dev/null; then
  say "could not install the pinned nightly: the widget will be built on stable (larger)"
fi

# wasm-pack only uses a wasm-bindgen on PATH whose version equals Cargo.lock's; otherwise it
# would build one into its own cache on every fresh machine. Install exactly that version.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$bindgen_version" ]; then
  echo "[setup] cannot find wasm-bindgen in Cargo.lock" >&2
  exit 1
fi
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $bindgen_version"; then
  say "installing wasm-bindgen-cli $bindgen_version (a few minutes, once)"
  # --locked can fail when one of its pinned dependencies was yanked; retry unlocked.
  cargo install wasm-bindgen-cli --version "$bindgen_version" --locked --force \
    || cargo install wasm-bindgen-cli --version "$bindgen_version" --force
fi

if ! command -v wasm-pack >/dev/null 2>&1; then
  say "installing wasm-pack (about two minutes, once)"
  cargo install wasm-pack --locked || cargo install wasm-pack
fi

if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/terser ] || [ ! -d node_modules/playwright-core ] \
  || [ ! -d node_modules/vite ] || [ ! -d node_modules/react-dom ] || [ ! -d node_modules/vue ]; then
  say "installing npm dev tools (binaryen, terser, playwright-core; vite, react, vue for the framework tests)"
  npm ci --no-audit --no-fund
fi

if [ "$purpose" = test ]; then
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "installing Debian's chromium and chromium-driver"
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver
  fi

  # Redis for the cluster tests (broker, presence, ordering): the server at 127.0.0.1:6379, or
  # IMAGE_CHAT_TEST_REDIS_URL's. When nothing answers there, Debian's redis-server is installed
  # if missing and started (in memory, no persistence). The tests fail, never skip, without it.
  redis_url=${IMAGE_CHAT_TEST_REDIS_URL:-redis://127.0.0.1:6379}
  redis_hostport=${redis_url#redis://}
  redis_hostport=${redis_hostport##*@}
  redis_hostport=${redis_hostport%%/*}
  redis_host=${redis_hostport%:*}
  redis_port=${redis_hostport##*:}
  redis_up() { (exec 3<>"/dev/tcp/$redis_host/$redis_port") 2>/dev/null; }
  if ! redis_up; then
    if [ "$redis_host" != 127.0.0.1 ] && [ "$redis_host" != localhost ]; then
      echo "[setup] Redis at $redis_url does not answer (set IMAGE_CHAT_TEST_REDIS_URL or start it)" >&2
      exit 1
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
      say "installing Debian's redis-server"
      sudo_cmd=""
      if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
      $sudo_cmd apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq redis-server
    fi
    say "starting redis-server on port $redis_port"
    redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --logfile /tmp/image-chat-redis-"$redis_port".log
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    if ! redis_up; then
      echo "[setup] redis-server did not start (see /tmp/image-chat-redis-$redis_port.log)" >&2
      exit 1
    fi
  fi
fi
