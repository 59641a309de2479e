// Pieces of the widget loaded only when a page needs them (docs/WIDGET.md, "Languages"): ES
// modules in pkg/ beside the glue, imported on first use. Each specifier is a literal relative
// to this file (pkg/snippets/<crate>/src/dom/), which the browser resolves against the server
// the widget came from and every bundler turns into a chunk of its own (Vite leaves imports
// built from variables alone in node_modules). scripts/build-widget.sh checks this list against
// locales/*.json.
const LOCALES = {
  fr: () => import('../../../../locales/fr.js'),
  pt: () => import('../../../../locales/pt.js'),
  ru: () => import('../../../../locales/ru.js'),
};

// Imports pkg/locales/<tag>.js and calls `done` with its table, or with nothing when it could
// not be loaded (offline, blocked): the widget then stays in English.
export function importLocale(tag, done) {
  const load = LOCALES[tag];
  if (!load) return done();
  load().then((m) => done(m.default), () => done());
}
