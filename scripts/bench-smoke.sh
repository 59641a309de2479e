#!/usr/bin/env bash
# Benchmark smoke run: builds the server and the load generator (dev profile by default, which
# `cargo test` has mostly built already; BENCH_PROFILE=server for the optimised one) and runs
# `image-chat-loadgen smoke`: every scenario with small numbers (a few hundred clients on
# 127.0.0.1, about 15 s), checking that every op is acked, every expected delivery arrives and is
# timed, the byte sizes are sane, a reconnect storm resyncs every client, and one image viewed
# through two nodes on Redis (IMAGE_CHAT_TEST_REDIS_URL, default 127.0.0.1:6379, which
# `setup.sh test` starts) gets every delivery on both; then the same over the server's own TLS
# (`--tls`). Exits non-zero if the tool or those invariants break. Bounded: each run is killed
# after 120 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
profile=${BENCH_PROFILE:-dev}
cargo build --quiet --profile "$profile" -p image-chat-server -p image-chat-loadgen
dir=${CARGO_TARGET_DIR:-target}/$([ "$profile" = dev ] && echo debug || echo "$profile")
timeout 120 "$dir/image-chat-loadgen" --deadline-secs 110 smoke
# The same over the server's own TLS (every client and attacker on wss:// / https://).
timeout 120 "$dir/image-chat-loadgen" --deadline-secs 110 --tls smoke
