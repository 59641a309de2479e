#!/usr/bin/env bash
# The full benchmarks of docs/BENCHMARKS.md. Builds with the `server` profile, then runs each
# scenario against a freshly spawned server on 127.0.0.1, one at a time. Figures go to the
# terminal and, as JSON lines, to target/bench/results.jsonl (override with BENCH_OUT). Up to
# ~10,000 clients: the load generator raises its open-files soft limit to the hard one, which
# must be at least ~10,100 (check `ulimit -Hn`; the server inherits it).
#
# Part 1, side by side: image-chat and its peers (bench/peers: Socket.IO 4.8 on Node,
# socketioxide, a plain tokio-tungstenite relay; same behaviour: a room per image, ack +
# broadcast, no persistence), each scenario BENCH_ROUNDS times (default 3) per server, the
# servers' order rotated every round, then a table per scenario with medians and image-chat's
# ratios (`image-chat-loadgen summary`). Peers are built / installed here: socketioxide and the
# relay with cargo (their own workspace, bench/peers/rust), Socket.IO with `npm ci`
# (bench/peers/socketio, lockfile committed). BENCH_PEERS picks them (default
# "socketio socketioxide relay"; empty: image-chat alone). Part 2: image-chat's own scenarios.
#
# BENCH_QUICK=1: every scenario with small numbers and one round (a minute or two), to check
# the whole chain works; its figures mean nothing. BENCH_PART=1 or 2 runs one part only.
# Extra server flags for every image-chat run can be given in BENCH_SERVER_ARGS.
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
quick=${BENCH_QUICK:-}
rounds=${BENCH_ROUNDS:-$([ -n "$quick" ] && echo 1 || echo 3)}
part=${BENCH_PART:-all}
peers=${BENCH_PEERS-socketio socketioxide relay}
loadgen=$target/server/image-chat-loadgen
peers_dir=$PWD/bench/peers

# n FULL QUICK: a client count or rate, small under BENCH_QUICK.
n() { if [ -n "$quick" ]; then echo "$2"; else echo "$1"; fi; }
secs=$(n 10 2)

lg() {
  local label=$1; shift
  echo
  echo "### $label"
  "$loadgen" --json "$out" --label "$label" --deadline-secs 300 "$@"
}

# One server by name, then the scenario's arguments.
lg_server() {
  local server=$1 label=$2; shift 2
  case $server in
    image-chat) lg "$label" "${extra[@]}" "$@" ;;
    socketio) lg "$label" --server-name socketio --protocol socket-io --server-bin node \
      "--server-arg=$peers_dir/socketio/server.mjs" "$@" ;;
    socketioxide) lg "$label" --server-name socketioxide --protocol socket-io \
      --server-bin "$peers_dir/rust/target/release/peer-socketioxide" "$@" ;;
    relay) lg "$label" --server-name relay --protocol relay \
      --server-bin "$peers_dir/rust/target/release/peer-relay" "$@" ;;
    *) echo "unknown server $server" >&2; return 1 ;;
  esac
}

# A scenario on every server, BENCH_ROUNDS rounds, the order rotated each round so that no
# server always runs first (or right after the heaviest one). A failed run (e.g. a peer that
# did not accept every connection in time) is reported and left out of the medians.
side_by_side() {
  local label=$1; shift
  local servers=(image-chat $peers)
  local count=${#servers[@]}
  for ((round = 0; round < rounds; round++)); do
    for ((k = 0; k < count; k++)); do
      lg_server "${servers[$(((k + round) % count))]}" "$label" "$@" ||
        echo "!!! $label on ${servers[$(((k + round) % count))]}: run failed"
    done
  done
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"
echo "nofile:  soft $(ulimit -Sn), hard $(ulimit -Hn)"
echo "load:    $(cut -d" " -f1-3 /proc/loadavg) (other work on the machine skews the figures)"

if [ "$part" != 2 ]; then
  for peer in $peers; do
    case $peer in
      socketio) (cd bench/peers/socketio && npm ci --no-audit --no-fund --loglevel=error) ;;
      socketioxide | relay) cargo build --quiet --release --manifest-path bench/peers/rust/Cargo.toml ;;
    esac
  done
  [ -n "$peers" ] && echo "peers:   $peers (node $(node --version))"
  side_by_side "idle $(n 10000 500)" idle --clients "$(n 10000 500)" --images "$(n 100 10)"
  side_by_side "fanout $(n 1000 200)" load --clients "$(n 1000 200)" --images 1 --publishers 1 \
    --rate 10 --duration-secs "$secs"
  side_by_side "fanout $(n 5000 400)" load --clients "$(n 5000 400)" --images 1 --publishers 1 \
    --rate 10 --duration-secs "$secs"
  side_by_side "busy image" load --clients "$(n 1000 200)" --images 1 --publishers 10 \
    --rate "$(n 200 50)" --duration-secs "$secs" --replies
fi

if [ "$part" != 1 ]; then
  # The pump batches by default; a fixed 20 ms window beside it (the default until session 14).
  window="--server-arg=--batch-window-ms=20"
  lg "2 fanout 10000" "${extra[@]}" load --clients "$(n 10000 500)" --images 1 --publishers 1 --rate 10 --duration-secs "$secs"
  lg "2b busy image, a 20 ms window" "${extra[@]}" $window load --clients "$(n 1000 200)" --images 1 --publishers 10 --rate "$(n 200 50)" --duration-secs "$secs" --replies
  lg "3 spread, batched by the pump" "${extra[@]}" load --clients "$(n 10000 500)" --images "$(n 1000 50)" --publishers "$(n 1000 50)" --rate 200 --duration-secs "$secs" --replies
  lg "3 spread, a 20 ms window" "${extra[@]}" $window load --clients "$(n 10000 500)" --images "$(n 1000 50)" --publishers "$(n 1000 50)" --rate 200 --duration-secs "$secs" --replies
  lg "4 bytes" "${extra[@]}" bytes
  lg "5 storm" "${extra[@]}" storm --clients "$(n 5000 200)" --images "$(n 50 10)"
  lg "6 hostile" "${extra[@]}" hostile --clients "$(n 1000 100)" --rate 10 --duration-secs "$secs" --slowloris "$(n 500 20)" --slow-readers "$(n 50 5)" --junk 20 --junk-rate 50 --snapshot-readers 4
  # The server's own TLS (a certificate made for the run): fan-out and hostile traffic over wss.
  lg "9 fanout 1000 over TLS" "${extra[@]}" --tls load --clients "$(n 1000 200)" --images 1 --publishers 1 --rate 10 --duration-secs "$secs"
  lg "9 hostile over TLS" "${extra[@]}" --tls hostile --clients "$(n 1000 100)" --rate 10 --duration-secs "$secs" --slowloris "$(n 500 20)" --slow-readers "$(n 50 5)" --junk 20 --junk-rate 50 --snapshot-readers 4
fi
echo
echo "## Side by side (medians; ratios > 1: image-chat better)"
"$loadgen" summary "$out"
echo
echo "JSON: $out"
