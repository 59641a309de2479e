// Text mode's DOM glue (shipped in the text bundle only; the why is in src/text/dom.rs). It
// reads the site's text and draws over it; it never moves, wraps or rewrites the site's nodes,
// except the documented fallback (`wrap`) where the CSS Custom Highlight API is missing.
// Offsets are UTF-16 code units of the container's flattened text: what DOM Ranges use.

// Never part of the text: the widget's own elements and text that is not shown as text.
const SKIP = '[data-image-chat-own],script,style,noscript,template,textarea,select';

// The container's text nodes in document order and where each starts in the flattened text.
export class Flat {
  constructor(root) {
    this.root = root;
    this.nodes = [];
    this.starts = [];
    let text = '';
    const walker = root.ownerDocument.createTreeWalker(root, 5 /* ELEMENT | TEXT */, {
      acceptNode: (n) => (n.nodeType === 1 ? (n.matches(SKIP) ? 2 : 3) : 1),
    });
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      this.nodes.push(n);
      this.starts.push(text.length);
      text += n.data;
    }
    this.text = text;
  }

  // The flattened offset of a boundary point (node, offset): inside one of our text nodes, its
  // start plus the offset; anywhere else, the start of the first text node after the point.
  offsetOf(node, offset) {
    const i = this.nodes.indexOf(node);
    if (i >= 0) return this.starts[i] + Math.min(offset, node.data.length);
    const r = this.root.ownerDocument.createRange();
    r.setStart(node, offset);
    let lo = 0;
    let hi = this.nodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (r.comparePoint(this.nodes[mid], 0) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.nodes.length ? this.starts[lo] : this.text.length;
  }

  // [start, end] of a Range clipped to the container, or null when it lies outside it.
  offsets(range) {
    if (!this.nodes.length || !range.intersectsNode(this.root)) return null;
    const inner = this.root.ownerDocument.createRange();
    inner.selectNodeContents(this.root);
    const start = range.compareBoundaryPoints(0 /* START_TO_START */, inner) < 0
      ? 0 : this.offsetOf(range.startContainer, range.startOffset);
    const end = range.compareBoundaryPoints(2 /* END_TO_END */, inner) > 0
      ? this.text.length : this.offsetOf(range.endContainer, range.endOffset);
    return end > start ? [start, end] : null;
  }

  // The text node holding offset `at` and the offset in it (a boundary between two nodes goes
  // to the later one for a start, the earlier one for an end).
  point(at, isEnd) {
    let lo = 0;
    let hi = this.nodes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] < at || (!isEnd && this.starts[mid] === at)) lo = mid;
      else hi = mid - 1;
    }
    const node = this.nodes[lo];
    return [node, Math.max(0, Math.min(at - this.starts[lo], node.data.length))];
  }

  // A live Range over [start, end) of the flattened text, or null if the text is shorter.
  range(start, end) {
    if (!this.nodes.length || end > this.text.length || end <= start) return null;
    const r = this.root.ownerDocument.createRange();
    const [sn, so] = this.point(start, false);
    const [en, eo] = this.point(end, true);
    r.setStart(sn, so);
    r.setEnd(en, eo);
    return r;
  }

  // The flattened offset under the viewport point (x, y), or -1 (no text there).
  offsetAt(x, y) {
    const doc = this.root.ownerDocument;
    let node = null;
    let offset = 0;
    if (doc.caretPositionFromPoint) {
      const p = doc.caretPositionFromPoint(x, y);
      if (p) { node = p.offsetNode; offset = p.offset; }
    } else if (doc.caretRangeFromPoint) {
      const r = doc.caretRangeFromPoint(x, y);
      if (r) { node = r.startContainer; offset = r.startOffset; }
    }
    if (!node || !this.root.contains(node)) return -1;
    return this.offsetOf(node, offset);
  }
}

// Whether a viewport point lies on one of a range's line boxes.
export function rangeHas(range, x, y) {
  const rects = range.getClientRects();
  for (let i = 0; i < rects.length; i++) {
    const r = rects[i];
    if (x >= r.left && x <= r.right && y >= r.top && y <= r.bottom) return true;
  }
  return false;
}

// The end of a range's last line box, in viewport coordinates: [left, top, bottom] of the
// last rect (where the prompt and the thread go), or null when it is not laid out.
export function lastLine(range) {
  const rects = range.getClientRects();
  const r = rects.length ? rects[rects.length - 1] : null;
  return r ? [r.left, r.right, r.top, r.bottom] : null;
}

// The document's selection as a Range (the first), or null when nothing is selected.
export function selectedRange(doc) {
  const sel = doc.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  return sel.getRangeAt(0);
}

// Selects `range` (the keyboard path), or clears the selection for null.
export function select(doc, range) {
  const sel = doc.getSelection();
  if (!sel) return;
  sel.removeAllRanges();
  if (range) sel.addRange(range);
}

// Moves or extends the selection like the arrow keys do with caret browsing
// (`Selection.modify`): alter "move" | "extend", direction "forward" | "backward",
// granularity "character" | "word" | "line".
export function modify(doc, alter, direction, granularity) {
  const sel = doc.getSelection();
  if (sel && sel.rangeCount) sel.modify(alter, direction, granularity);
}

// Whether the CSS Custom Highlight API is there.
export function highlightApi() {
  return typeof CSS !== 'undefined' && !!CSS.highlights && typeof Highlight === 'function';
}

// Every widget's ranges under each highlight name, so that several containers on one page
// share the document's one registry (CSS.highlights is per document).
const groups = new Map();

// Sets `owner`'s ranges under highlight `name` (an empty array removes them).
export function paint(name, owner, ranges) {
  let group = groups.get(name);
  if (!group) { group = new Map(); groups.set(name, group); }
  if (ranges.length) group.set(owner, ranges); else group.delete(owner);
  const all = [];
  for (const list of group.values()) all.push(...list);
  if (all.length) CSS.highlights.set(name, new Highlight(...all));
  else { CSS.highlights.delete(name); groups.delete(name); }
}

// Fallback without the Highlight API: wraps each text node piece of `range` in
// <mark class="image-chat-mark" data-chat-id=id data-kind=kind>; returns the marks.
export function wrap(range, id, kind) {
  const doc = range.startContainer.ownerDocument;
  const marks = [];
  const root = range.commonAncestorContainer;
  const nodes = [];
  if (root.nodeType === 3) nodes.push(root);
  else {
    const walker = doc.createTreeWalker(root, 4 /* TEXT */);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) if (range.intersectsNode(n)) nodes.push(n);
  }
  for (let node of nodes) {
    if (node.parentElement && node.parentElement.closest(SKIP)) continue;
    let from = node === range.startContainer ? range.startOffset : 0;
    let to = node === range.endContainer ? range.endOffset : node.data.length;
    if (to <= from) continue;
    if (to < node.data.length) node.splitText(to);
    if (from > 0) node = node.splitText(from);
    const mark = doc.createElement('mark');
    mark.className = 'image-chat-mark';
    mark.setAttribute('data-chat-id', id);
    mark.setAttribute('data-kind', kind);
    node.parentNode.insertBefore(mark, node);
    mark.appendChild(node);
    marks.push(mark);
  }
  return marks;
}

// Undoes `wrap`: each mark's text goes back in its place, joined with its neighbours.
export function unwrap(marks) {
  for (const mark of marks) {
    const parent = mark.parentNode;
    if (!parent) continue;
    while (mark.firstChild) parent.insertBefore(mark.firstChild, mark);
    mark.remove();
    parent.normalize();
  }
}
