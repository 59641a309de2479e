#!/usr/bin/env bash
# The widget's first paint against another commit's, on this machine, the same hour, order
# alternated: what a first-paint change is worth when the shared machine's speed swings from
# one day to the next (docs/BENCHMARKS.md, "First paint against the issue's own baseline").
#
#   bash scripts/bench-widget-ab.sh REV [PAIRS]     (PAIRS: 6 unless given; at most 20)
#
# REV's widget and debug server are built from a throwaway worktree of REV with REV's own
# scripts (its own target dir, so neither build disturbs the other), then this tree's. Each
# pair runs REV's `e2e/bench-widget.mjs --markers 1000 --runs 7 --thread-time` from REV's tree
# and this tree's from this one, in turn; the table gives each bench's medians and, last, the
# median of each column. Own work is the snapshot task's CPU less its style recalc and layout,
# computed here the same way for both (older benches do not print it). The worktree is
# removed at the end, whatever happens. Loopback only; bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bash scripts/bench-widget-ab.sh REV [PAIRS]}
pairs=${2:-6}
if ! [[ $pairs =~ ^[0-9]+$ ]] || ((pairs < 1 || pairs > 20)); then
  echo "PAIRS must be a whole number from 1 to 20" >&2
  exit 2
fi
git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || {
  echo "no such commit: $rev" >&2
  exit 2
}
bash scripts/setup.sh test
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
here=$PWD
target=${CARGO_TARGET_DIR:-$here/target}
base=$(mktemp -d /tmp/image-chat-ab.XXXXXX)
results=$(mktemp /tmp/image-chat-ab-results.XXXXXX)
cleanup() {
  git -C "$here" worktree remove --force "$base/tree" >/dev/null 2>&1 || true
  rm -rf "$base" "$results"
}
trap cleanup EXIT

git worktree add --detach --quiet "$base/tree" "$rev"
# The older tree's build and bench scripts find their npm tools (binaryen, terser,
# playwright-core) in its own node_modules.
ln -s "$here/node_modules" "$base/tree/node_modules"
echo "bench-widget-ab: building $rev's widget and server" >&2
(cd "$base/tree" && CARGO_TARGET_DIR="$base/target" bash scripts/build-widget.sh >/dev/null &&
  CARGO_TARGET_DIR="$base/target" cargo build --quiet -p image-chat-server)
echo "bench-widget-ab: building this tree's widget and server" >&2
bash scripts/build-widget.sh >/dev/null
cargo build --quiet -p image-chat-server

# One bench from tree $1 with server $2: prints "task style layout" (each the bench's median)
# of the snapshot task: the first of the bench's CPU blocks (newer benches add the event's).
bench() {
  (cd "$1" && IMAGE_CHAT_SERVER_BIN=$2 timeout 600 node --experimental-websocket \
    e2e/bench-widget.mjs --markers 1000 --runs 7 --thread-time) |
    awk '/main-thread CPU time/ { n++ } n != 1 { next }
         /main-thread CPU time/ { t = $(NF-1) } /of which style recalc/ { s = $(NF-1) }
         /of which layout/ { l = $(NF-1) }
         END { if (t == "" || s == "" || l == "") exit 1; print t, s, l }'
}

for ((p = 1; p <= pairs; p++)); do
  for which in base head; do
    if [[ $which == base ]]; then
      figures=$(bench "$base/tree" "$base/target/debug/image-chat-server")
    else
      figures=$(bench "$here" "$target/debug/image-chat-server")
    fi
    echo "$p $which $(cut -d' ' -f1 /proc/loadavg) $figures" | tee -a "$results" >&2
  done
done

head_rev=$(git rev-parse --short HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || head_rev="$head_rev+changes"
node - "$results" "$(git rev-parse --short "$rev")" "$head_rev" <<'EOF'
const [file, baseName, headName] = process.argv.slice(2);
const rows = require('node:fs').readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' '));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const cols = ['task CPU', 'style recalc', 'layout', 'own work'];
const of = (who) => rows.filter((r) => r[1] === who).map((r) => {
  const [task, style, layout] = r.slice(3).map(Number);
  return [task, style, layout, task - style - layout];
});
const fmt = (x) => x.toFixed(1).padStart(8);
console.log(`first paint of 1,000 markers, ms (medians of 7 runs per bench; load ${rows[0][2]}–${rows.at(-1)[2]})`);
console.log(`${'pair'.padEnd(8)}${'build'.padEnd(20)}${cols.map((c) => c.padStart(14)).join('')}`);
for (const r of rows) {
  const [task, style, layout] = r.slice(3).map(Number);
  const name = r[1] === 'base' ? baseName : headName;
  console.log(`${r[0].padEnd(8)}${name.padEnd(20)}${[task, style, layout, task - style - layout].map((x) => fmt(x).padStart(14)).join('')}`);
}
for (const [who, name] of [['base', baseName], ['head', headName]]) {
  const v = of(who);
  console.log(`${'median'.padEnd(8)}${name.padEnd(20)}${cols.map((_, i) => fmt(median(v.map((x) => x[i]))).padStart(14)).join('')}`);
}
EOF
