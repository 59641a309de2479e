// Pieces of the widget loaded only when a page needs them (docs/WIDGET.md, "Languages"): ES
// modules in pkg/ beside the glue, imported on first use. The specifier is relative to this
// file (pkg/snippets/<crate>/src/dom/), which the browser resolves against the server the
// widget came from, and which bundlers (vite, webpack) rewrite to the chunk files they emit.

// Imports pkg/locales/<tag>.js and calls `done` with its table, or with nothing when it could
// not be loaded (offline, blocked): the widget then stays in English.
export function importLocale(tag, done) {
  import(`../../../../locales/${tag}.js`).then((m) => done(m.default), () => done());
}
