// What 1,000 markers cost Chromium alone, without the widget: a static page with the widget's
// stylesheet (read from src/style.rs) gets 1,000 `button.image-chat-marker`s in one task, and
// the first style recalc and layout after that are timed. Each run is a fresh page; figures are
// the main thread's CPU time from a trace (`UpdateLayoutTree` and `Layout` events), which a
// busy machine disturbs less than wall time. Variants override the stylesheet or the markup:
//
//   node e2e/bench-marker-css.mjs [--runs 5] [--variants '{"name":{"extra":"css", ...}}']
//
// A variant may have `extra` (CSS appended), `replace` ([from, to] in the stylesheet), `style`
// (false: no inline position; or a template of the inline style with {x} and {y}, default
// "left:{x}%;top:{y}%"), `text` (the marker's text, default "1"), `inner` (the marker's content
// as HTML, {n} standing for the text), `attrs` (more attributes, {n} likewise) and `group` (N:
// markers wrapped in `div.image-chat-group`s of N), `wrap` (true: each button inside a
// `div.image-chat-pin` that carries the position). After the first render, one more marker is
// added and its style + layout timed too (a live event's DOM cost). Loopback only; no server
// needed.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, launchBrowser } from './harness.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    variants: { type: 'string', default: '{"current":{}}' },
  },
});
const RUNS = Math.min(Math.max(Number(values.runs), 1), 20);
const N = 1000;
const variants = JSON.parse(values.variants);

const src = readFileSync(join(ROOT, 'src', 'style.rs'), 'utf8');
const constant = (name) => {
  const m = new RegExp(`const ${name}: &str = (?:r#"([\\s\\S]*?)"#|"([^"]*)");`).exec(src);
  if (!m) throw new Error(`${name} not found in src/style.rs`);
  return m[1] ?? m[2];
};
const [LIGHT, DARK, RULES] = ['LIGHT', 'DARK', 'RULES'].map(constant);
// As `style::stylesheet()` assembles it.
const STYLESHEET = `.image-chat,.image-chat[data-theme=light]{${LIGHT}}.image-chat[data-theme=dark]{${DARK}}@media (prefers-color-scheme:dark){.image-chat[data-theme=auto]{${DARK}}}${RULES}`;

const escape = (s) => s.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;');
function marker(v, j) {
  const x = ((((j * 37) % 997) / 997) * 100).toFixed(3);
  const y = ((((j * 61) % 991) / 991) * 100).toFixed(3);
  const label = escape(`Discussion by Seeder: “Discussion number ${j}” (1 comment)`);
  const n = v.text ?? '1';
  const pos = (v.style ?? 'left:{x}%;top:{y}%').toString().replaceAll('{x}', x).replaceAll('{y}', y);
  const style = v.style === false ? '' : ` style="${pos}"`;
  const attrs = v.attrs ? ' ' + v.attrs.replaceAll('{n}', n) : '';
  const inner = (v.inner ?? '{n}').replaceAll('{n}', n);
  const button = (style) =>
    `<button type="button" class="image-chat-marker" aria-haspopup="dialog" aria-expanded="false" data-chat-id="c${j}"${style}${attrs} aria-label="${label}">${inner}</button>`;
  // `wrap`: the position on a `div.image-chat-pin` around the button (outside the DOM contract;
  // measures what a button without a per-element style costs).
  return v.wrap ? `<div class="image-chat-pin"${style}>${button('')}</div>` : button(style);
}
function markers(v) {
  let html = '';
  for (let j = 0; j < N; j++) {
    if (v.group && j % v.group === 0) html += `${j ? '</div>' : ''}<div class="image-chat-group">`;
    html += marker(v, j);
  }
  return v.group ? html + '</div>' : html;
}

const browser = await launchBrowser();
const results = {};
try {
  for (let run = 0; run < RUNS; run++) {
    // Variants alternate within each run, so a busy period hits them all alike.
    for (const [name, v] of Object.entries(variants)) {
      const css = (v.replace ? STYLESHEET.replace(v.replace[0], v.replace[1]) : STYLESHEET) + (v.extra ?? '');
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.setContent(`<!doctype html><html><head><style>${css}</style></head><body style="margin:0">
        <img width="1200" height="750" style="display:block" alt=""
          src="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1200' height='750'/%3E">
        <div class="image-chat-overlays"><div class="image-chat" data-theme="auto" data-state="live" role="group" tabindex="0"
          style="left:0;top:0;width:1200px;height:750px"><div class="image-chat-layer"></div>
          <span class="image-chat-crosshair"></span><div class="image-chat-bar"><span
          class="image-chat-status">Live</span><span class="image-chat-online"></span></div></div></div>
        </body></html>`);
      const html = markers(v);
      const one = marker(v, N);
      await page.evaluate(() => void document.body.offsetHeight);
      await browser.startTracing(page, { categories: ['devtools.timeline'] });
      const wall = await page.evaluate((html) => {
        const layer = document.querySelector('.image-chat-layer');
        const t0 = performance.now();
        layer.insertAdjacentHTML('beforeend', html);
        const t1 = performance.now();
        void document.body.offsetHeight;
        return { insert: t1 - t0, styleLayout: performance.now() - t1 };
      }, html);
      const cpu = (events, name) =>
        events.filter((e) => e.name === name && e.ph === 'X').reduce((a, e) => a + (e.tdur ?? 0), 0) / 1000;
      const first = JSON.parse((await browser.stopTracing()).toString()).traceEvents;
      // One more marker (into the last group, if grouped), as a live event adds it.
      await browser.startTracing(page, { categories: ['devtools.timeline'] });
      await page.evaluate((one) => {
        const layer = document.querySelector('.image-chat-layer');
        (layer.lastElementChild?.classList.contains('image-chat-group') ? layer.lastElementChild : layer)
          .insertAdjacentHTML('beforeend', one);
        void document.body.offsetHeight;
      }, one);
      const ev = JSON.parse((await browser.stopTracing()).toString()).traceEvents;
      (results[name] ??= []).push({
        ...wall,
        style: cpu(first, 'UpdateLayoutTree'),
        layout: cpu(first, 'Layout'),
        event: cpu(ev, 'UpdateLayoutTree') + cpu(ev, 'Layout'),
      });
      await context.close();
    }
  }
} finally {
  await browser.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${N} markers on a static page, ${RUNS} fresh pages each, median ms`);
console.log(`${'variant'.padEnd(24)} ${'style CPU'.padStart(10)} ${'layout CPU'.padStart(10)} ${'sum CPU'.padStart(8)} ${'insert wall'.padStart(12)} ${'style+layout wall'.padStart(18)} ${'+1 CPU'.padStart(7)}`);
for (const [name, rs] of Object.entries(results)) {
  const m = (k) => median(rs.map((r) => r[k])).toFixed(1);
  const sum = median(rs.map((r) => r.style + r.layout)).toFixed(1);
  console.log(`${name.padEnd(24)} ${m('style').padStart(10)} ${m('layout').padStart(10)} ${sum.padStart(8)} ${m('insert').padStart(12)} ${m('styleLayout').padStart(18)} ${m('event').padStart(7)}`);
}
