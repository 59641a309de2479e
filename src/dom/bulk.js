// Hand-written JS for bulk work (shipped in the widget: kept short; the why is in clones.rs
// and socket.rs). Values are only set as attributes or text, never parsed as HTML.

// For each element: a value per name in `names`, its text, its flag attributes (space
// separated); `ends` holds where each field ends in `text` (UTF-16 units).
export function cloneEach(parent, before, template, names, text, ends) {
  const attrs = names.split(' ');
  const frag = parent.ownerDocument.createDocumentFragment();
  const out = [];
  let start = 0;
  let k = 0;
  const next = () => text.slice(start, (start = ends[k++]));
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

// A string's UTF-8 bytes, encoded natively.
export function utf8(text) {
  return new TextEncoder().encode(text);
}
