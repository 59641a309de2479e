// Hand-written JS for bulk work (shipped in the widget: kept short; the why is in clones.rs
// and socket.rs). Values are only set as attributes or text, never parsed as HTML.

// For each element: a value per name in `names`, its text, its flag attributes (space
// separated); `ends` holds where each field ends in `text` (UTF-16 units). Element j is a deep
// clone of `alt` when `pick[j]` is 1, else of `template` (`pick` may be shorter): both hold the
// same text node (or none), and the text is written only when it differs from it. An `alt`
// clone goes without the attribute `altSkip` ('' for none). Returns nothing: the caller finds
// an element when it needs one (see clones.rs).
export function cloneEach(parent, before, template, names, text, ends, alt, pick, altSkip) {
  // Plain indexed loops, no iterators or closures: this runs once per snapshot, so in V8's
  // interpreter, where every call and iterator step counts.
  const attrs = names.split(' ');
  const n = attrs.length;
  const given = template.firstChild === null ? null : template.firstChild.data;
  const frag = parent.ownerDocument.createDocumentFragment();
  let start = 0;
  let k = 0;
  for (let j = 0; k < ends.length; j++) {
    const picked = pick[j] === 1;
    const el = (picked ? alt : template).cloneNode(true);
    for (let i = 0; i < n; i++) {
      if (!picked || attrs[i] !== altSkip) el.setAttribute(attrs[i], text.slice(start, ends[k]));
      start = ends[k++];
    }
    const t = text.slice(start, ends[k]);
    if (given === null) {
      if (t !== '') el.textContent = t;
    } else if (t !== given) {
      el.firstChild.data = t;
    }
    start = ends[k++];
    if (ends[k] > start) {
      const flags = text.slice(start, ends[k]).split(' ');
      for (let i = 0; i < flags.length; i++) el.setAttribute(flags[i], '');
    }
    start = ends[k++];
    frag.appendChild(el);
  }
  parent.insertBefore(frag, before ?? null);
}

// A string's UTF-8 bytes, encoded natively.
export function utf8(text) {
  return new TextEncoder().encode(text);
}

// Sets the empty attribute `name` on child i of `parent` when `change[i]` is 1, removes it
// when 2, and leaves the child alone when 0: one call for a thousand markers, and DOM calls
// only for the children that change.
export function syncFlags(parent, change, name) {
  const c = parent.children;
  const n = Math.min(c.length, change.length);
  for (let i = 0; i < n; i++) {
    if (change[i] === 1) c[i].setAttribute(name, '');
    else if (change[i] === 2) c[i].removeAttribute(name);
  }
}

// The element children of `parent`, as one array: wasm-bindgen hands them to wasm in one call
// instead of one `children.item(i)` call into JS each.
export function childElements(parent) {
  return Array.from(parent.children);
}
