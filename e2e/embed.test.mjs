// End-to-end: embedding the widget the ways a site owner does, always from a page on ANOTHER
// origin than the image-chat server (as every real site is): the one-tag loader for a tenant
// whose `origins` list the page and for one whose do not (the console must say the origin is
// the reason), the documented ES-module import, `data-server` naming another server, and a
// page under a strict Content-Security-Policy. Real server processes, Debian's Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startHostServer, launchBrowser, ROOT, WAIT_MS, waitFor } from './harness.mjs';
import { ApiClient } from './api.mjs';

const WWW = join(ROOT, 'www');

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A site page: the sample picture (served by the site) and `scripts` (HTML). */
function sitePage(scripts, imageAttrs = 'data-image-chat="embed-test"') {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>a site</title></head>
<body><img id="photo" src="sample.svg" width="600" height="375" alt="Lakeside" ${imageAttrs}>
${scripts}</body></html>`;
}

/**
 * Runs `body({ site, pages, server, page, console })`: a site on its own origin (pages filled
 * in by the test, mutable until requested), a server started with `serverArgs(site)` (e.g. a
 * tenants file naming the site's origin), and a fresh page whose console messages, page
 * errors and CSP violations are recorded. Everything started is stopped afterwards.
 */
async function withSite(serverArgs, body) {
  // The browser asks every site for a favicon: not a failure of the widget.
  const pages = { '/favicon.ico': { body: '' } };
  const site = await startHostServer({ root: WWW, pages });
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-embed-'));
  let server;
  const context = await browser.newContext();
  try {
    server = await startServer({ args: serverArgs(site, dir) });
    const page = await context.newPage();
    const messages = [];
    page.on('console', (m) => messages.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (err) => messages.push(`pageerror: ${err.message}`));
    await page.addInitScript(() => {
      window.__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await body({ site, pages, server, page, messages });
  } finally {
    await context.close();
    await server?.kill();
    server?.cleanup();
    await site.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function waitState(page, state) {
  return waitFor(page, (s) => document.querySelector('.image-chat')?.dataset.state === s, state);
}

/** A discussion added through the server's API shows up on the page: the widget is live. */
async function proveLive(page, serverUrl, imageId = 'embed-test') {
  const api = await ApiClient.join(serverUrl, imageId);
  try {
    const { chatId } = await api.createChat(0.4, 0.6, 'seen from another origin');
    await waitFor(page, (id) => !!document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`), chatId);
    return chatId;
  } finally {
    api.close();
  }
}

function tenantsFile(dir, tenants) {
  const path = join(dir, 'tenants.toml');
  writeFileSync(
    path,
    tenants
      .map((t) => `[[tenant]]\nid = "${t.id}"\norigins = [${t.origins.map((o) => `"${o}"`).join(', ')}]\nanonymous = "allow"\n`)
      .join('\n'),
  );
  return path;
}

test('one tag on another origin: a tenant listing the page works; one that does not says why on the console', async () => {
  await withSite(
    (site, dir) => [
      '--tenants',
      tenantsFile(dir, [
        { id: 'listed', origins: [site.origin] },
        { id: 'unlisted', origins: ['https://elsewhere.example'] },
      ]),
    ],
    async ({ site, pages, server, page, messages }) => {
      for (const tenant of ['listed', 'unlisted']) {
        pages[`/${tenant}.html`] = {
          body: sitePage(`<script src="${server.url}/embed.js" data-tenant="${tenant}" defer></script>`, `data-image-chat="embed-${tenant}"`),
        };
      }
      await page.goto(`${site.origin}/listed.html`);
      await waitState(page, 'live');
      assert.ok(!messages.some((m) => m.startsWith('error')), messages.join('\n'));

      await page.goto(`${site.origin}/unlisted.html`);
      await waitState(page, 'stopped');
      await waitFor(page, () => !!document.querySelector('.image-chat-status[title]'));
      const said = messages.filter((m) => m.includes(`origin ${site.origin} is not allowed for tenant "unlisted"`));
      assert.equal(said.length, 1, `the console names the origin as the reason, once:\n${messages.join('\n')}`);
      assert.match(said[0], /^error: /);
      assert.match(said[0], /add "http:\/\/127\.0\.0\.1:\d+" to the tenant's `origins`/);
      assert.ok(!messages.some((m) => m.includes('could not load the widget')), messages.join('\n'));
      // Posting on a refused page fails at once, with no Retry that could never succeed.
      const box = await page.locator('#photo').boundingBox();
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await page.locator('.image-chat-thread[data-draft] textarea').fill('refused page');
      await page.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      await page.locator('.image-chat-marker[data-chat-id][data-failed]').waitFor({ timeout: WAIT_MS });
      assert.equal(await page.locator('.image-chat-thread [data-action=dismiss]').count(), 1);
      assert.equal(await page.locator('.image-chat-thread [data-action=retry]').count(), 0, 'no retry');
    },
  );
});

test('the documented ES-module import works from another origin', async () => {
  await withSite(
    () => [],
    async ({ site, pages, server, page, messages }) => {
      pages['/module.html'] = {
        body: sitePage(`<script type="module">
import init, { ImageChat } from "${server.url}/pkg/image_chat.js";
await init();
window.__chat = ImageChat.mount("#photo", { server: "${server.url}", tenant: "demo", imageId: "embed-test" });
</script>`),
      };
      await page.goto(`${site.origin}/module.html`);
      await waitState(page, 'live');
      await proveLive(page, server.url);
      assert.equal(await page.evaluate(() => window.__chat.state), 'live');
      assert.ok(!messages.some((m) => m.startsWith('error') || m.startsWith('pageerror')), messages.join('\n'));
    },
  );
});

test('data-server on the loader tag points the widget at another server', async () => {
  const other = await startServer();
  try {
    await withSite(
      () => [],
      async ({ site, pages, server, page }) => {
        // The loader and the widget's files come from `server`; the discussions from `other`.
        pages['/index.html'] = {
          body: sitePage(`<script src="${server.url}/embed.js" data-server="${other.url}" defer></script>`),
        };
        await page.goto(site.url);
        await waitState(page, 'live');
        await proveLive(page, other.url);
        const snap = await (await fetch(`${server.url}/api/v1/tenants/demo/snapshot?image=embed-test`)).json();
        assert.equal(snap.chats.length, 0, 'nothing went to the server that served the files');
      },
    );
  } finally {
    await other.kill();
    other.cleanup();
  }
});

/** The CSP a strict site sends, with what the widget needs (docs/WIDGET.md, "Content Security Policy"). */
function strictCsp(serverUrl, { styles = "'unsafe-inline'" } = {}) {
  const ws = serverUrl.replace(/^http/, 'ws');
  return [
    "default-src 'none'",
    `script-src ${serverUrl} 'wasm-unsafe-eval'`,
    `connect-src ${serverUrl} ${ws}`,
    `style-src ${styles}`,
    "img-src 'self'",
    "base-uri 'none'",
    "object-src 'none'",
  ].join('; ');
}

test('a page under a strict CSP (script-src the server, wasm-unsafe-eval, connect-src ws://server) works', async () => {
  await withSite(
    () => [],
    async ({ site, pages, server, page, messages }) => {
      pages['/index.html'] = {
        body: sitePage(`<script src="${server.url}/embed.js" data-locale="pt-BR" defer></script>`),
        headers: { 'content-security-policy': strictCsp(server.url) },
      };
      await page.goto(site.url);
      await waitState(page, 'live');
      // The language chunk is a module from the server, which script-src already allows.
      await waitFor(page, () => document.querySelector('.image-chat')?.lang === 'pt');
      const chatId = await proveLive(page, server.url);
      // Styled and placed: the marker sits where its discussion is (0.4, 0.6 of the picture).
      const at = await page.evaluate((id) => {
        const img = document.querySelector('#photo').getBoundingClientRect();
        const m = document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).getBoundingClientRect();
        return { x: (m.left + m.width / 2 - img.left) / img.width, y: (m.top + m.height / 2 - img.top) / img.height, w: m.width };
      }, chatId);
      assert.ok(Math.abs(at.x - 0.4) < 0.02 && Math.abs(at.y - 0.6) < 0.02 && at.w > 10, JSON.stringify(at));
      // A person can post.
      const box = await page.locator('#photo').boundingBox();
      await page.mouse.click(box.x + box.width * 0.7, box.y + box.height * 0.3);
      await page.locator('.image-chat-thread[data-draft] textarea').fill('posted under a strict CSP');
      await page.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      await waitFor(page, () => [...document.querySelectorAll('.image-chat-marker[data-chat-id]')].some((m) => !m.hasAttribute('data-pending')) && document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 2);
      assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violation');
      assert.ok(!messages.some((m) => m.startsWith('error') || m.startsWith('pageerror')), messages.join('\n'));
    },
  );
});

test("only the page's language is fetched, from the server's origin; if it cannot be, English", async () => {
  await withSite(
    () => [],
    async ({ site, pages, server, page, messages }) => {
      const fetched = [];
      page.on('request', (r) => {
        if (r.url().includes('/pkg/locales/')) fetched.push(new URL(r.url()).pathname);
      });
      pages['/fr.html'] = {
        body: sitePage(`<script src="${server.url}/embed.js" data-locale="fr-FR" defer></script>`),
      };
      await page.goto(`${site.origin}/fr.html`);
      await waitState(page, 'live');
      await waitFor(page, () => document.querySelector('.image-chat')?.lang === 'fr');
      assert.equal(await page.locator('.image-chat-status').textContent(), 'En direct');
      assert.deepEqual(fetched, ['/pkg/locales/fr.js'], 'one chunk, the page\'s language, fetched once');
      assert.ok(!messages.some((m) => m.startsWith('error') || m.startsWith('pageerror')), messages.join('\n'));

      // The ES-module import: the widget fetches the language an option names by itself.
      fetched.length = 0;
      pages['/module.html'] = {
        body: sitePage(`<script type="module">
import init, { ImageChat } from "${server.url}/pkg/image_chat.js";
await init();
ImageChat.mount("#photo", { server: "${server.url}", tenant: "demo", imageId: "embed-test", locale: "ru" });
</script>`),
      };
      await page.goto(`${site.origin}/module.html`);
      await waitFor(page, () => document.querySelector('.image-chat')?.lang === 'ru');
      await waitState(page, 'live');
      assert.equal(await page.locator('.image-chat-status').textContent(), 'В эфире');
      assert.deepEqual(fetched, ['/pkg/locales/ru.js']);

      // Offline or blocked: English, live, and the console says why.
      await page.route('**/pkg/locales/**', (route) => route.abort());
      messages.length = 0;
      await page.goto(`${site.origin}/fr.html`);
      await waitState(page, 'live');
      const said = (m) => /^error: .*the fr phrases could not be loaded: showing English/.test(m);
      for (let waited = 0; !messages.some(said) && waited < WAIT_MS; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(messages.some(said), messages.join('\n'));
      assert.equal(await page.evaluate(() => document.querySelector('.image-chat').lang), 'en');
      assert.equal(await page.locator('.image-chat-status').textContent(), 'Live');
      await proveLive(page, server.url);
    },
  );
});
