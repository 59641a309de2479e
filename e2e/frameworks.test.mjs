// End-to-end, the way sites are built: a React 19 app and a Vue 3 app, built with Vite from the
// npm registry (e2e/frameworks/build.mjs) into a temporary directory and served from another
// origin than the image-chat server. The <img> is a bare child of a framework-managed parent
// with conditional siblings; the test toggles the siblings, changes the image's src, unmounts
// and remounts it (React in StrictMode, so effects run twice), and changes route — with the
// widget mounted explicitly (ES module, mount in useEffect/onMounted, destroy in the cleanup /
// onBeforeUnmount), by the loader's auto-mount, and by both at once (mount hands the loader's
// widget over). After each step: no console or page error, the marker on its spot within 2 px,
// and a second viewer's live count back down once the image is gone (no leaked socket).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startHostServer, launchBrowser, WAIT_MS } from './harness.mjs';
import { buildApps } from './frameworks/build.mjs';
import { collectErrors, viewer, waitAligned, waitNoOverlay } from './overlay.mjs';

const SPOT = { x: 0.6, y: 0.4 }; // the red dot on both test photos

let browser;
let apps;
let outDir;
before(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'image-chat-apps-'));
  apps = await buildApps(outDir);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

async function scenario(framework, mode) {
  const server = await startServer();
  const host = await startHostServer({ root: apps[framework] });
  const imageId = `${framework}-${mode}`;
  const other = await viewer(server, imageId);
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  try {
    const { chatId } = await other.createChat(SPOT.x, SPOT.y, 'The red dot');
    assert.notEqual(new URL(host.url).origin, new URL(server.url).origin);
    const page = await context.newPage();
    const errors = collectErrors(page);
    const app = (js) => page.evaluate(js);
    await page.goto(`${host.url}?server=${encodeURIComponent(server.url)}&mode=${mode}&image=${imageId}`);
    await page.locator('.image-chat[data-state=live]').waitFor({ timeout: WAIT_MS });
    const img = '#parent > img';
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);
    await other.waitOnline(2);

    // Siblings appear before and after the image (it moves without resizing), and go.
    await app(() => window.__app.setFlag(true));
    await page.locator('#before').waitFor({ timeout: WAIT_MS });
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);
    await app(() => window.__app.setFlag(false));
    await page.locator('#before').waitFor({ state: 'detached', timeout: WAIT_MS });
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);

    // Another picture of another shape in the same element.
    await app(() => window.__app.setSrc('/photo-wide.svg'));
    await page.waitForFunction(() => document.querySelector('#parent > img')?.naturalWidth === 1000, null, { timeout: WAIT_MS });
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);

    // Unmounted: the overlay goes, and the widget's socket with it.
    await app(() => window.__app.setShow(false));
    await waitNoOverlay(page);
    await other.waitOnline(1);
    // Mounted again (a new <img>): a new widget, live, on the spot.
    await app(() => window.__app.setShow(true));
    await page.locator('.image-chat[data-state=live]:not([hidden])').waitFor({ timeout: WAIT_MS });
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);
    await other.waitOnline(2);

    // A route change away and back.
    await app(() => window.__app.go('/about'));
    await page.locator('#about').waitFor({ timeout: WAIT_MS });
    await waitNoOverlay(page);
    await other.waitOnline(1);
    await page.goBack();
    await page.locator(img).waitFor({ timeout: WAIT_MS });
    await page.locator('.image-chat[data-state=live]:not([hidden])').waitFor({ timeout: WAIT_MS });
    await waitAligned(page, img, chatId, SPOT.x, SPOT.y);
    await other.waitOnline(2);

    // One widget on the page, one overlay; nothing went wrong on the way.
    assert.equal(await page.locator('.image-chat:not([hidden])').count(), 1);
    if (mode !== 'explicit') {
      assert.equal(await app(() => window.ImageChat.instances.length), 1);
    }
    assert.deepEqual(await app(() => [...document.querySelectorAll('#parent > *')].map((e) => e.tagName)), ['IMG']);
    assert.deepEqual(errors, []);
  } finally {
    other.close();
    await context.close();
    await host.close();
    await server.kill();
    server.cleanup();
  }
}

for (const framework of ['react', 'vue']) {
  for (const mode of ['explicit', 'auto', 'both']) {
    test(`${framework}: ${mode} mount — siblings, src, unmount/remount, route change`, () => scenario(framework, mode));
  }
}
