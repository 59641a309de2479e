// Shortens the names of the widget's wasm imports, in the wasm and in wasm-bindgen's JS glue
// alike (scripts/build-widget.sh runs it after wasm-bindgen). wasm-bindgen names every import
// after its JS function plus a 16-hex-digit hash (`__wbg_addEventListener_847fd86b8c33ec43`),
// and each name is written twice, in the wasm's import section and as a key of the glue's
// import object: ~150 of them are several kilobytes that gzip cannot squeeze (the hashes are
// random). The exports the glue calls (`wasm.imagechat_mount`, `wasm.__wbindgen_export2`…) are
// shortened the same way. Nothing else changes: same functions, same order, same module.
//   node scripts/minify-imports.mjs pkg/image_chat_bg.wasm pkg/image_chat.js
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const [wasmPath, gluePath] = process.argv.slice(2);
const wasm = readFileSync(wasmPath);
let glue = readFileSync(gluePath, 'utf8');
// wasm-bindgen's module name for the wasm's imports: `./<name>_bg.js` for `<name>_bg.wasm`
// (image_chat_bg.wasm, and the text bundle's image_chat_text_bg.wasm).
const MODULE = `./${wasmPath.split('/').pop().replace(/\.wasm$/, '.js')}`;

function leb(buf, pos) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}
function encodeLeb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return Buffer.from(out);
}
const name = (s) => Buffer.concat([encodeLeb(Buffer.byteLength(s)), Buffer.from(s)]);
// Reads a length-prefixed name at `pos`: [the name, the position after it].
function readName(buf, pos) {
  const [len, start] = leb(buf, pos);
  return [buf.toString('utf8', start, start + len), start + len];
}
// Short names: a..z, A..Z, then two characters; `$` and `_` keep them valid JS identifiers.
const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ$_';
const shortName = (i) =>
  i < ALPHABET.length ? ALPHABET[i] : shortName(Math.floor(i / ALPHABET.length) - 1) + ALPHABET[i % ALPHABET.length];

let pos = 8;
const parts = [wasm.subarray(0, 8)];
const renamed = new Map();
const exportsRenamed = new Map();
while (pos < wasm.length) {
  const id = wasm[pos];
  const [size, bodyStart] = leb(wasm, pos + 1);
  const end = bodyStart + size;
  if (id === 7) {
    // Exports the glue calls as `wasm.NAME` get short names too (`memory` and anything the
    // glue does not name that way keep theirs).
    let [count, p] = leb(wasm, bodyStart);
    const body = [encodeLeb(count)];
    for (let i = 0; i < count; i++) {
      let field;
      [field, p] = readName(wasm, p);
      const descStart = p;
      p++;
      [, p] = leb(wasm, p);
      let field2 = field;
      const use = new RegExp(`\\bwasm\\.${field.replace(/\$/g, '\\$')}\\b`, 'g');
      if (field !== 'memory' && use.test(glue)) {
        field2 = `x${shortName(exportsRenamed.size)}`;
        exportsRenamed.set(field, field2);
        glue = glue.replace(use, `wasm.${field2}`);
      }
      body.push(name(field2), wasm.subarray(descStart, p));
    }
    const section = Buffer.concat(body);
    parts.push(Buffer.from([7]), encodeLeb(section.length), section);
    pos = end;
    continue;
  }
  if (id !== 2) {
    parts.push(wasm.subarray(pos, end));
    pos = end;
    continue;
  }
  let [count, p] = leb(wasm, bodyStart);
  const body = [encodeLeb(count)];
  for (let i = 0; i < count; i++) {
    let module, field;
    [module, p] = readName(wasm, p);
    [field, p] = readName(wasm, p);
    // The import's descriptor (kind and type) is copied as it is: find where it ends.
    const descStart = p;
    const kind = wasm[p++];
    if (kind === 0) [, p] = leb(wasm, p);
    else if (kind === 1) { p++; let flags; [flags, p] = leb(wasm, p); [, p] = leb(wasm, p); if (flags & 1) [, p] = leb(wasm, p); }
    else if (kind === 2) { let flags; [flags, p] = leb(wasm, p); [, p] = leb(wasm, p); if (flags & 1) [, p] = leb(wasm, p); }
    else if (kind === 3) p += 2;
    else throw new Error(`unknown import kind ${kind}`);
    let field2 = field;
    if (module === MODULE) {
      if (!renamed.has(field)) renamed.set(field, shortName(renamed.size));
      field2 = renamed.get(field);
    }
    body.push(name(module), name(field2), wasm.subarray(descStart, p));
  }
  const section = Buffer.concat(body);
  parts.push(Buffer.from([2]), encodeLeb(section.length), section);
  pos = end;
}

let missing = 0;
for (const [long, short] of renamed) {
  // The glue's import object: `        __wbg_foo_0123456789abcdef: function(...`.
  const key = new RegExp(`^(\\s*)${long.replace(/\$/g, '\\$')}:`, 'm');
  if (!key.test(glue)) missing++;
  glue = glue.replace(key, `$1${short}:`);
}
if (missing) throw new Error(`${missing} imports not found in ${gluePath}`);
writeFileSync(wasmPath, Buffer.concat(parts));
writeFileSync(gluePath, glue);
// wasm-bindgen's typing of the raw exports, kept in step.
const dts = wasmPath.replace(/\.wasm$/, '.wasm.d.ts');
if (existsSync(dts)) {
  let text = readFileSync(dts, 'utf8');
  for (const [long, short] of exportsRenamed) {
    text = text.replace(new RegExp(`\\b${long.replace(/\$/g, '\\$')}\\b`, 'g'), short);
  }
  writeFileSync(dts, text);
}
console.log(`minify-imports: ${renamed.size} imports and ${exportsRenamed.size} exports renamed`);
