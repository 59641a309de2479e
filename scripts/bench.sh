#!/usr/bin/env bash
# The full benchmarks of docs/BENCHMARKS.md. Builds with the `server` profile, then runs each
# scenario against a freshly spawned server on 127.0.0.1 (one at a time; about 6 minutes in
# all). Figures go to the terminal and, as JSON lines, to target/bench/results.jsonl (override
# with BENCH_OUT). Up to ~10,000 clients: the load generator raises its open-files soft limit to
# the hard one, which must be at least ~10,100 (check `ulimit -Hn`; the server inherits it).
# Extra server flags for every run can be given in BENCH_SERVER_ARGS (e.g. a per-IP connection
# limit high enough for 10,000 loopback connections).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --profile server -p image-chat-server -p image-chat-loadgen
target=${CARGO_TARGET_DIR:-target}
out=${BENCH_OUT:-$target/bench/results.jsonl}
mkdir -p "$(dirname "$out")"
: > "$out"
extra=()
for arg in ${BENCH_SERVER_ARGS:-}; do extra+=("--server-arg=$arg"); done

lg() {
  local label=$1; shift
  echo
  echo "### $label"
  "$target/server/image-chat-loadgen" --json "$out" --label "$label" --deadline-secs 300 "${extra[@]}" "$@"
}
off="--server-arg=--batch-window-ms=0"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "nofile:  soft $(ulimit -Sn), hard $(ulimit -Hn)"
echo "load:    $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"

lg "1 idle 10000"             idle --clients 10000 --images 100
lg "2 fanout 1000"            load --clients 1000  --images 1 --publishers 1 --rate 10 --duration-secs 10
lg "2 fanout 5000"            load --clients 5000  --images 1 --publishers 1 --rate 10 --duration-secs 10
lg "2 fanout 10000"           load --clients 10000 --images 1 --publishers 1 --rate 10 --duration-secs 10
lg "2b busy image, batching on"  load --clients 1000 --images 1 --publishers 10 --rate 200 --duration-secs 10 --replies
lg "2b busy image, batching off" $off load --clients 1000 --images 1 --publishers 10 --rate 200 --duration-secs 10 --replies
lg "3 spread, batching on"    load --clients 10000 --images 1000 --publishers 1000 --rate 200 --duration-secs 10 --replies
lg "3 spread, batching off"   $off load --clients 10000 --images 1000 --publishers 1000 --rate 200 --duration-secs 10 --replies
lg "4 bytes"                  bytes
lg "5 storm 5000"             storm --clients 5000 --images 50
lg "6 hostile 1000"           hostile --clients 1000 --rate 10 --duration-secs 10 --slowloris 500 --slow-readers 50 --junk 20 --junk-rate 50 --snapshot-readers 4
echo
echo "JSON: $out"
