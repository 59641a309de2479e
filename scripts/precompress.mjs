// Writes a Brotli (quality 11) twin beside each file given (`x.wasm.br`; scripts/build-widget.sh
// writes the gzip twins with the gzip command), which the server sends to browsers that accept
// it (crates/server/src/http.rs), and prints the total. Compressing once at build time, at the
// highest level, costs nothing per request and transfers less than compressing on the fly.
// Usage: node scripts/precompress.mjs FILE...
import { readFileSync, writeFileSync } from 'node:fs';
import { brotliCompressSync, constants } from 'node:zlib';

let raw = 0;
let br = 0;
for (const file of process.argv.slice(2)) {
  const bytes = readFileSync(file);
  const brotli = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  writeFileSync(`${file}.br`, brotli);
  raw += bytes.length;
  br += brotli.length;
}
console.log(`Brotli twins: ${raw} bytes raw, ${br} bytes Brotli (quality 11)`);
