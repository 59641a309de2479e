// End-to-end, the install paths a site owner and a front-end developer take (issue 17):
// - one binary: a server started with NO asset flags serves /embed.js and the wasm built into
//   it, and a page on another origin mounts the widget with the one-tag loader;
// - npm: `scripts/pack-npm.sh` packs the package (`npm pack`), the tarball is installed into a
//   scratch app that imports it (`import { mount } from "image-chat"`), TypeScript checks the
//   app's use of the types, Vite builds the app (the wasm becomes a build asset), and the built
//   app, on its own origin, mounts the widget in Chromium against a real server.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startHostServer, launchBrowser, ROOT, WAIT_MS } from './harness.mjs';
import { ApiClient } from './api.mjs';
import { collectErrors } from './overlay.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A discussion added through the server's API shows up on the page: the widget is live. */
async function proveLive(page, serverUrl, imageId) {
  const api = await ApiClient.join(serverUrl, imageId);
  try {
    const { chatId } = await api.createChat(0.3, 0.7, 'seen through the installed widget');
    await page.locator(`.image-chat-marker[data-chat-id="${chatId}"]`).waitFor({ timeout: WAIT_MS });
  } finally {
    api.close();
  }
}

test('a server started with no asset flags serves the widget built into it', async () => {
  const server = await startServer({ assets: false });
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>site</title></head>
<body><img id="photo" src="sample.svg" width="600" height="375" alt="Lakeside" data-image-chat="one-binary">
<script src="${server.url}/embed.js" data-tenant="demo" defer></script></body></html>`;
  const site = await startHostServer({
    root: join(ROOT, 'www'),
    pages: { '/favicon.ico': { body: '' }, '/one-binary.html': { body: html } },
  });
  const context = await browser.newContext();
  try {
    const embed = await fetch(`${server.url}/embed.js`);
    assert.equal(embed.status, 200);
    assert.match(embed.headers.get('content-type'), /^text\/javascript/);
    assert.equal(await embed.text(), readFileSync(join(ROOT, 'www', 'embed.js'), 'utf8'));
    // Node's fetch decodes the Brotli twin; the bytes must be the wasm the build wrote.
    const wasm = await fetch(`${server.url}/pkg/image_chat_bg.wasm`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(wasm.status, 200);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal(wasm.headers.get('content-encoding'), 'br');
    const bytes = Buffer.from(await wasm.arrayBuffer());
    assert.ok(bytes.equals(readFileSync(join(ROOT, 'pkg', 'image_chat_bg.wasm'))), 'the built wasm');
    // The language chunks are built in too, precompressed, as modules any origin may import.
    const chunk = await fetch(`${server.url}/pkg/locales/fr.js`, { headers: { 'accept-encoding': 'br' } });
    assert.equal(chunk.status, 200);
    assert.match(chunk.headers.get('content-type'), /^text\/javascript/);
    assert.equal(chunk.headers.get('content-encoding'), 'br');
    assert.equal(chunk.headers.get('access-control-allow-origin'), '*');
    assert.equal(await chunk.text(), readFileSync(join(ROOT, 'pkg', 'locales', 'fr.js'), 'utf8'));

    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${site.origin}/one-binary.html`);
    await page.locator('.image-chat[data-state=live]').waitFor({ timeout: WAIT_MS });
    await proveLive(page, server.url, 'one-binary');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await site.close();
    await server.kill();
    server.cleanup();
  }
});

test('the npm package installs into a Vite app that mounts the widget', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'image-chat-npm-'));
  const server = await startServer();
  let site;
  const context = await browser.newContext();
  try {
    const tarball = execFileSync('bash', [join(ROOT, 'scripts', 'pack-npm.sh')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop();
    assert.ok(existsSync(tarball), tarball);
    const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const file of ['package.json', 'README.md', 'index.js', 'index.d.ts', 'image_chat.js', 'image_chat.d.ts', 'image_chat_bg.wasm']) {
      assert.ok(listing.includes(`package/${file}`), `${file} in the tarball:\n${listing.join('\n')}`);
    }
    const manifest = JSON.parse(execFileSync('tar', ['xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
    assert.equal(manifest.private, undefined, 'publishable');
    assert.equal(manifest.type, 'module');
    assert.equal(manifest.exports['.'].types, './index.d.ts');

    // A fresh app, as a front-end developer starts one.
    const app = join(scratch, 'app');
    mkdirSync(join(app, 'public'), { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
    writeFileSync(join(app, 'public', 'sample.svg'), readFileSync(join(ROOT, 'www', 'sample.svg')));
    writeFileSync(
      join(app, 'index.html'),
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title></head>
<body><img id="photo" src="/sample.svg" width="600" height="375" alt="Lakeside">
<script type="module" src="/main.js"></script></body></html>`,
    );
    writeFileSync(
      join(app, 'main.js'),
      `import { mount, ImageChat } from "image-chat";
const server = new URLSearchParams(location.search).get("server");
window.__chat = await mount("#photo", { server, tenant: "demo", imageId: "from-npm", locale: "pt" });
window.__version = ImageChat.version;
`,
    );
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', tarball], {
      cwd: app,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    assert.ok(existsSync(join(app, 'node_modules', 'image-chat', 'index.d.ts')));

    // The types, as a TypeScript app sees them through the `exports` map (strict, no
    // skipLibCheck; wasm-bindgen's d.ts uses Symbol.dispose, hence lib esnext). The
    // @ts-expect-error lines fail the check if a wrong option ever type-checks.
    writeFileSync(
      join(app, 'check.ts'),
      `import { mount, load, ImageChat, type ImageChatOptions, type ImageChatState } from "image-chat";
const options: ImageChatOptions = { server: "https://chat.example.com", tenant: "acme", theme: "dark" };
const chat: ImageChat = await mount("#photo", options);
const state: ImageChatState = chat.state;
const Widget: typeof ImageChat = await load();
Widget.mount(document.createElement("img"), { readOnly: true, markerSize: 32 }).destroy();
chat.setAuth({ type: "anonymous", name: "Ada" });
console.log(state, ImageChat.version);
// @ts-expect-error: not an option
mount("#photo", { colour: "red" });
// @ts-expect-error: themes are light, dark or auto
mount("#photo", { theme: "blue" });
// Managing discussions: update() in place, open(), typed page events on the image.
chat.update({ locale: "fr", theme: "light", readOnly: false });
const shown: boolean = chat.open("OPfIayT_TXG3Z9MGL1orcQ");
const img = document.createElement("img");
img.addEventListener("image-chat:count", (e) => console.log(e.detail.count - e.detail.resolved, shown));
img.addEventListener("image-chat:open", (e) => console.log(e.detail.chatId.length));
img.addEventListener("image-chat:op-failed", (e) => {
  const kind: "create" | "reply" | "edit" | "delete" | "delete-comment" | "resolve" | "move" = e.detail.kind;
  console.log(kind, e.detail.reason, e.detail.op);
});
// @ts-expect-error: the tenant cannot change without a remount
chat.update({ tenant: "other" });
`,
    );
    execFileSync(
      join(ROOT, 'node_modules', '.bin', 'tsc'),
      ['--noEmit', '--strict', '--module', 'esnext', '--moduleResolution', 'bundler', '--target', 'es2022', '--lib', 'esnext,dom', 'check.ts'],
      { cwd: app, stdio: ['ignore', 'inherit', 'inherit'] },
    );

    const { build } = await import('vite');
    const dist = join(scratch, 'dist');
    await build({
      configFile: false,
      root: app,
      logLevel: 'warn',
      build: { outDir: dist, emptyOutDir: true, target: 'esnext' },
    });
    const assets = readdirSync(join(dist, 'assets'));
    assert.ok(assets.some((f) => f.endsWith('.wasm')), `the wasm is a build asset: ${assets}`);

    site = await startHostServer({ root: dist, pages: { '/favicon.ico': { body: '' } } });
    assert.notEqual(site.origin, new URL(server.url).origin);
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${site.url}?server=${encodeURIComponent(server.url)}`);
    await page.locator('.image-chat[data-state=live]').waitFor({ timeout: WAIT_MS });
    // The language chunk the widget imports on demand was bundled and loads from the app.
    await page.locator('.image-chat[lang=pt]').waitFor({ timeout: WAIT_MS });
    await proveLive(page, server.url, 'from-npm');
    assert.equal(await page.evaluate(() => window.__chat.state), 'live');
    assert.equal(await page.evaluate(() => window.__version), manifest.version);
    // The wasm came from the app's origin (the bundler's copy), not from the server.
    const wasmFrom = await page.evaluate(() =>
      performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.wasm')),
    );
    assert.equal(wasmFrom.length, 1, `${wasmFrom}`);
    assert.ok(wasmFrom[0].startsWith(site.origin), wasmFrom[0]);
    await page.evaluate(() => window.__chat.destroy());
    assert.equal(await page.locator('.image-chat').count(), 0);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await site?.close();
    await server.kill();
    server.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
});
