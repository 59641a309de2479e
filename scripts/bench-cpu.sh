#!/usr/bin/env bash
# User-space CPU cost per delivery of the server and of the load generator, in instructions
# counted by valgrind's callgrind: deterministic enough for A/B decisions on a busy machine, where
# CPU seconds and latencies are not. Kernel time (the TCP send/receive itself) is not counted.
#
# Method: one image, 300 subscribers, 2 creates/s (slow enough for valgrind), for 5 s and then
# 15 s; the difference between the two runs is 20 events x 300 = 6,000 deliveries, so ramp-up,
# handshakes and shutdown cancel out. The server is measured under callgrind with a native load
# generator, then the load generator with a native server.
#
# Usage: bash scripts/bench-cpu.sh [BIN_DIR]   (default: the `server` profile build, built first)
#
# BENCH_CPU_PEER=relay or socketioxide measures that peer server (bench/peers/rust, built with
# `cargo build --release` there) the same way instead, through the load generator's protocol for
# it; the load generator's own cost is then not measured. BENCH_CPU_KEEP=DIR keeps the callgrind
# outputs there (for `callgrind_annotate`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
target=${CARGO_TARGET_DIR:-target}
if [ $# -ge 1 ]; then
  bin=$1
else
  cargo build --quiet --profile server -p image-chat-server -p image-chat-loadgen
  bin=$target/server
fi
bin=$(cd "$bin" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
peer=${BENCH_CPU_PEER:-}
peers=$PWD/bench/peers/rust/target/release
case $peer in
  "") server_bin=$bin/image-chat-server; protocol=() ;;
  relay) server_bin=$peers/peer-relay; protocol=(--server-name relay --protocol relay) ;;
  socketioxide) server_bin=$peers/peer-socketioxide
    protocol=(--server-name socketioxide --protocol socket-io) ;;
  *) echo "unknown BENCH_CPU_PEER $peer" >&2; exit 1 ;;
esac
clients=300
rate=2

# The load generator kills the server it spawned with SIGKILL, which would lose callgrind's
# output: it spawns this wrapper instead, and the server (under valgrind) is stopped with
# SIGTERM (graceful shutdown) afterwards.
cat >"$work/server.sh" <<EOF
#!/usr/bin/env bash
valgrind --tool=callgrind --callgrind-out-file="\$CG_OUT" "$server_bin" "\$@" 2>/dev/null &
echo \$! >"\$CG_OUT.pid"
wait
EOF
chmod +x "$work/server.sh"

instructions() { grep -m1 '^summary:' "$1" | awk '{print $2}'; }

server_run() { # duration -> instructions
  export CG_OUT=$work/server.$1.out
  timeout 600 "$bin/image-chat-loadgen" "${protocol[@]}" --server-bin "$work/server.sh" load \
    --clients $clients \
    --images 1 --publishers 1 --rate $rate --duration-secs "$1" >"$work/server.$1.log" 2>&1
  local pid
  pid=$(cat "$CG_OUT.pid")
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
  grep 'deliveries (' "$work/server.$1.log" >&2
  instructions "$CG_OUT"
}

loadgen_run() { # duration -> instructions
  timeout 600 valgrind --tool=callgrind --callgrind-out-file="$work/loadgen.$1.out" \
    "$bin/image-chat-loadgen" --server-bin "$bin/image-chat-server" load --clients $clients \
    --images 1 --publishers 1 --rate $rate --duration-secs "$1" >"$work/loadgen.$1.log" 2>/dev/null
  grep 'deliveries (' "$work/loadgen.$1.log" >&2
  instructions "$work/loadgen.$1.out"
}

deliveries=$((clients * rate * 10))
s5=$(server_run 5)
s15=$(server_run 15)
if [ -n "${BENCH_CPU_KEEP:-}" ]; then
  mkdir -p "$BENCH_CPU_KEEP"
  cp "$work"/server.*.out "$BENCH_CPU_KEEP"/
fi
echo "server${peer:+ ($peer)}:  $(((s15 - s5) / deliveries)) instructions per delivery (user space)"
[ -z "$peer" ] || exit 0
l5=$(loadgen_run 5)
l15=$(loadgen_run 15)
echo "loadgen: $(((l15 - l5) / deliveries)) instructions per delivery (user space)"
