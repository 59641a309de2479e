// Where a wasm's Brotli bytes are, by section: the code, the data (strings, the stylesheet,
// tables), the imports and the rest, each raw and Brotli-compressed on its own (quality 11, as
// scripts/precompress.mjs). The parts compress a little worse alone than inside the whole
// file, so their sum is a little more than the whole's figure, which is printed last.
// Used for docs/BENCHMARKS.md "Widget weight (issue 18, session 7)".
// Usage: node scripts/wasm-sections.mjs pkg/image_chat_bg.wasm
import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants } from 'node:zlib';

const NAMES = {
  0: 'custom', 1: 'type', 2: 'import', 3: 'function', 4: 'table', 5: 'memory', 6: 'global',
  7: 'export', 8: 'start', 9: 'element', 10: 'code', 11: 'data', 12: 'data count',
};

const brotli = (bytes) =>
  brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/wasm-sections.mjs FILE.wasm');
  process.exit(2);
}
const wasm = readFileSync(file);
const totals = new Map();
let at = 8; // magic and version
const leb = () => {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = wasm[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return value;
};
while (at < wasm.length) {
  const id = wasm[at++];
  const length = leb();
  const body = wasm.subarray(at, at + length);
  at += length;
  // Small sections are grouped: only code, data and imports are worth a line of their own.
  const name = id === 10 || id === 11 || id === 2 ? NAMES[id] : 'other';
  const sum = totals.get(name) ?? { raw: 0, parts: [] };
  sum.raw += length;
  sum.parts.push(body);
  totals.set(name, sum);
}
for (const [name, { raw, parts }] of totals) {
  console.log(`${name.padEnd(6)} ${String(raw).padStart(8)} B raw ${String(brotli(Buffer.concat(parts))).padStart(7)} B Brotli`);
}
console.log(`whole  ${String(wasm.length).padStart(8)} B raw ${String(brotli(wasm)).padStart(7)} B Brotli`);
