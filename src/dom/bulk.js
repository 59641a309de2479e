// The widget's only hand-written JS: bulk work that wasm-bindgen's generated glue would do one
// small step at a time.

// Creates many elements in one call from wasm (see clones.rs): the wasm/JS boundary is crossed
// once, with every string in one, instead of once per DOM call with each string decoded on its
// own. Values are only ever set as attribute values or as text, never parsed as HTML.
//
// `text` holds, for each element in turn, its values for the attributes in `names` (space
// separated), its text, and a space-separated list of flag attributes (set to ""); `ends` has
// the end of every one of those fields in `text`, in UTF-16 code units.
export function cloneEach(parent, before, template, names, text, ends) {
  const attrs = names ? names.split(' ') : [];
  const frag = parent.ownerDocument.createDocumentFragment();
  const out = [];
  let start = 0;
  let k = 0;
  const next = () => {
    const value = text.slice(start, ends[k]);
    start = ends[k++];
    return value;
  };
  while (k < ends.length) {
    const el = template.cloneNode(false);
    for (const name of attrs) el.setAttribute(name, next());
    const content = next();
    if (content) el.textContent = content;
    const flags = next();
    if (flags) for (const flag of flags.split(' ')) el.setAttribute(flag, '');
    frag.appendChild(el);
    out.push(el);
  }
  parent.insertBefore(frag, before ?? null);
  return out;
}

// A string's UTF-8 bytes, encoded natively (see socket.rs). wasm-bindgen's own string passing
// copies ASCII one character at a time in a JS loop, which on a fresh page (not yet optimised)
// took 5–15 ms for a 400 KB snapshot frame.
export function utf8(text) {
  return new TextEncoder().encode(text);
}
