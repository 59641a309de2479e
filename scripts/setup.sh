#!/usr/bin/env bash
# Installs, if missing, every tool the demo (`setup.sh demo`) or the test suite (`setup.sh test`)
# needs on a fresh machine: the wasm32 Rust target, the pinned nightly with rust-src for the
# widget's release build (scripts/widget-toolchain.sh), wasm-bindgen-cli at the exact version in
# Cargo.lock, wasm-pack, the npm dev tools (binaryen's wasm-opt, terser, playwright-core), and for
# tests Debian's chromium + chromium-driver, openssl (the certificate of the e2e test on the
# server's own TLS), a running Redis (Debian's redis-server, started when nothing answers on
# 6379) and a running PostgreSQL with database `test` (Debian's postgresql, a throwaway cluster
# started when nothing answers on 5432). Idempotent and quiet when everything is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-test}
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[setup] %s\n' "$*"; }

# Debian packages and database clusters need root: `sudo` when not root.
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

apt_install() {
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@"
}

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
  || [ ! -d node_modules/vite ] || [ ! -d node_modules/react-dom ] || [ ! -d node_modules/vue ] \
  || [ ! -d node_modules/axe-core ] || [ ! -x node_modules/.bin/tsc ]; then
  say "installing npm dev tools (binaryen, terser, playwright-core; vite, react, vue for the framework and npm-package tests, typescript for its types; axe-core for the accessibility check)"
  npm ci --no-audit --no-fund
fi

if [ "$purpose" = test ]; then
  # The Debian package (scripts/build-deb.sh, checked by scripts/test-deb.sh) is built by
  # cargo-deb from crates.io; installed once into ~/.cargo/bin and reused.
  if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (about two minutes, once)"
    cargo install cargo-deb --version 3.8.0 --locked || cargo install cargo-deb --version 3.8.0
  fi
  if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "installing Debian's chromium and chromium-driver"
    apt_install chromium chromium-driver
  fi
  # openssl makes the self-signed certificate of the e2e test on the server's own TLS.
  if ! command -v openssl >/dev/null 2>&1; then
    say "installing Debian's openssl"
    apt_install openssl
  fi

  # Redis for the cluster tests (broker, presence, ordering): the server at 127.0.0.1:6379, or
  # IMAGE_CHAT_TEST_REDIS_URL's; started (in memory, no persistence) when nothing answers there.
  # Debian's redis-server is installed in any case: the tests that kill and restart Redis
  # mid-stream start private ones. The tests fail, never skip, without it.
  if ! command -v redis-server >/dev/null 2>&1; then
    say "installing Debian's redis-server"
    apt_install redis-server
  fi
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
    say "starting redis-server on port $redis_port"
    redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
      --logfile /tmp/image-chat-redis-"$redis_port".log
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    if ! redis_up; then
      echo "[setup] redis-server did not start (see /tmp/image-chat-redis-$redis_port.log)" >&2
      exit 1
    fi
  fi

  # PostgreSQL for the store tests (the conformance suite runs on it too) and the cluster tests:
  # the server at 127.0.0.1:5432 (user postgres, no password, database `test`), or
  # IMAGE_CHAT_TEST_DATABASE_URL's. When nothing answers there, Debian's postgresql is installed
  # if missing and a throwaway cluster is created (trust authentication, loopback only) and
  # started on that port; the database is created when missing. The tests fail, never skip,
  # without it.
  pg_url=${IMAGE_CHAT_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
  pg_rest=${pg_url#postgres://}
  pg_rest=${pg_rest##*@}
  pg_hostport=${pg_rest%%/*}
  pg_db=${pg_rest#*/}
  pg_db=${pg_db%%\?*}
  pg_host=${pg_hostport%:*}
  pg_port=${pg_hostport##*:}
  pg_up() { (exec 3<>"/dev/tcp/$pg_host/$pg_port") 2>/dev/null; }
  as_postgres() {
    # initdb and the server refuse to run as root.
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }
  if ! pg_up; then
    if [ "$pg_host" != 127.0.0.1 ] && [ "$pg_host" != localhost ]; then
      echo "[setup] PostgreSQL at $pg_host:$pg_port does not answer (set IMAGE_CHAT_TEST_DATABASE_URL or start it)" >&2
      exit 1
    fi
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      say "installing Debian's postgresql"
      apt_install postgresql
      # The package may start its own cluster on 5432 (password authentication over TCP): stop
      # it, the tests' cluster below takes the port.
      if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version name port _; do
          if [ "$port" = "$pg_port" ]; then $sudo_cmd pg_ctlcluster "$version" "$name" stop || true; fi
        done
      fi
    fi
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pg_data=/tmp/image-chat-postgres-$pg_port
    if [ ! -f "$pg_data/PG_VERSION" ]; then
      say "creating a PostgreSQL cluster for the tests in $pg_data"
      mkdir -p "$pg_data"
      if [ "$(id -u)" -eq 0 ]; then chown postgres: "$pg_data"; fi
      as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust --no-sync >/dev/null
    fi
    say "starting PostgreSQL on port $pg_port"
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_data.log" -w -t 30 \
      -o "-p $pg_port -c listen_addresses=$pg_host -k /tmp" start >/dev/null
    for _ in $(seq 50); do pg_up && break; sleep 0.1; done
    if ! pg_up; then
      echo "[setup] PostgreSQL did not start (see $pg_data.log)" >&2
      exit 1
    fi
  fi
  psql_bin=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$psql_bin" ]; then
    echo "[setup] no psql to check for database $pg_db (install postgresql-client)" >&2
    exit 1
  fi
  if [ "$("$psql_bin" "postgres://postgres@$pg_hostport/postgres" -Atc "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
    say "creating database $pg_db"
    "$psql_bin" "postgres://postgres@$pg_hostport/postgres" -qc "CREATE DATABASE \"$pg_db\""
  fi
fi
