// End-to-end: moderation in Chromium against the real server, the host page on its own origin
// loading the widget cross-origin. Grace (signed in by the site, a moderator) sees delete on
// Ada's discussion and the bar's lock button (Ada sees neither); Grace locks the image and Ada's
// widget turns read-only at once (badge, no draft on click, her typed reply refused); the site's
// admin API (the tenant's API key over HTTP) unlocks it, deletes a discussion live on both
// pages, and bans Ada: her next comment fails visibly with the ban's message. Takes the README
// screenshot of a locked image (docs/screenshots/locked.png). Every wait is on a DOM condition
// with a bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer, startHostServer, launchBrowser, waitFor } from './harness.mjs';
import { newId, signSso } from './api.mjs';

const SHOTS = join(ROOT, 'docs', 'screenshots');
const SECRET = 'moderation-e2e-secret-0123456789abcdef01';
const API_KEY = 'moderation-e2e-api-key-0123456789abcdef0';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

function hostPage(server, imageId, { auth } = {}) {
  const authAttr = auth ? ` data-auth='${JSON.stringify(auth)}'` : '';
  return {
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>moderation</title></head>
<body style="margin:0;padding:20px">
<img id="photo" src="${server.url}/sample.svg" width="640" height="400" alt="Lakeside"
  data-image-chat="${imageId}"${authAttr}>
<script src="${server.url}/embed.js" data-tenant="site" data-locale="en" defer></script>
</body></html>`,
  };
}

async function open(context, url) {
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
  await page.goto(url);
  await waitFor(page, () => document.querySelector('.image-chat')?.dataset.state === 'live');
  return page;
}

/** One admin API call with the tenant's key; the parsed JSON answer. */
async function admin(server, method, path, body) {
  const response = await fetch(`${server.url}/admin/api/v1/tenants/site${path}`, {
    method,
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json();
  assert.equal(response.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
  return json;
}

async function post(page, [x, y], text) {
  // A click on the picture while a thread is open only closes it.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  const photo = await page.locator('#photo').boundingBox();
  await page.mouse.click(photo.x + x * photo.width, photo.y + y * photo.height);
  await page.locator('.image-chat-thread[data-draft] textarea').fill(text);
  await page.locator('.image-chat-thread[data-draft] [data-action=post]').click();
}

test('a moderator locks an image live; the admin API unlocks, deletes and bans', async () => {
  const pages = {};
  const host = await startHostServer({ pages });
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-moderation-'));
  const tenants = join(dir, 'tenants.toml');
  writeFileSync(
    tenants,
    `[[tenant]]\nid = "site"\nsecret = "${SECRET}"\napi_key = "${API_KEY}"\norigins = ["${host.origin}"]\nanonymous = "allow"\n`,
  );
  const server = await startServer({ args: ['--tenants', tenants] });
  const contexts = [];
  try {
    const imageId = `moderation-${newId()}`;
    const q = `?image=${encodeURIComponent(imageId)}`;
    pages['/index.html'] = hostPage(server, imageId);
    pages['/grace.html'] = hostPage(server, imageId, {
      auth: signSso(SECRET, { id: 'g-1', name: 'Grace', isModerator: true }, 'site', server),
    });
    const adaCtx = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const graceCtx = await browser.newContext({ viewport: { width: 900, height: 700 } });
    contexts.push(adaCtx, graceCtx);
    const ada = await open(adaCtx, host.url);
    const grace = await open(graceCtx, `${host.origin}/grace.html`);

    // Ada starts a discussion; Grace, a moderator, may delete it; Ada has no lock button.
    await post(ada, [0.3, 0.4], 'Selling cheap watches');
    await waitFor(ada, () => document.querySelector('.image-chat-marker[data-chat-id]:not([data-pending])'));
    const id = await ada.locator('.image-chat-marker[data-chat-id]').first().getAttribute('data-chat-id');
    await waitFor(grace, (i) => document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`), id);
    await grace.locator(`.image-chat-marker[data-chat-id="${id}"]`).click();
    assert.equal(await grace.locator(`.image-chat-thread[data-chat-id="${id}"] [data-action=delete]`).count(), 1);
    await grace.keyboard.press('Escape');
    assert.equal(await ada.locator('.image-chat-lock').isVisible(), false);
    const lock = grace.locator('.image-chat-lock');
    assert.equal(await lock.isVisible(), true);
    assert.equal(await lock.getAttribute('aria-label'), 'Lock discussions (read-only)');
    // The padlock is an SVG hidden from assistive technology, no emoji (which a browser
    // without an emoji font draws as an empty box): the button is named by its label alone.
    assert.equal(await grace.getByRole('button', { name: 'Lock discussions (read-only)', exact: true }).count(), 1);
    assert.equal(await lock.textContent(), '');
    const icon = lock.locator('svg.image-chat-icon[aria-hidden=true] path');
    assert.equal(await icon.count(), 1);
    const box = await icon.boundingBox();
    assert.ok(box.width > 4 && box.height > 6, `a visible padlock: ${JSON.stringify(box)}`);
    assert.equal(
      await icon.evaluate((p) => getComputedStyle(p).fill),
      await lock.evaluate((b) => getComputedStyle(b).color),
      'filled with the button\'s colour',
    );
    assert.equal(await grace.locator('.image-chat-locked').isVisible(), false);

    // Grace locks: Ada's widget turns read-only live; Grace keeps her controls.
    await lock.click();
    for (const page of [ada, grace]) {
      await waitFor(page, () => document.querySelector('.image-chat').hasAttribute('data-locked'));
      assert.equal(await page.locator('.image-chat-locked').isVisible(), true);
      assert.equal(await page.locator('.image-chat-locked svg.image-chat-icon[aria-hidden=true]').isVisible(), true);
    }
    assert.equal(await lock.getAttribute('aria-pressed'), 'true');
    assert.equal(await lock.getAttribute('aria-label'), 'Unlock discussions');
    await waitFor(ada, () => document.querySelector('.image-chat').hasAttribute('data-read-only'));
    assert.equal(await ada.locator('.image-chat-sr').textContent(), 'A moderator locked these discussions.');
    assert.equal(await grace.locator('.image-chat').getAttribute('data-read-only'), null);
    const photo = await ada.locator('#photo').boundingBox();
    await ada.mouse.click(photo.x + 0.7 * photo.width, photo.y + 0.7 * photo.height);
    assert.equal(await ada.locator('.image-chat-thread[data-draft]').count(), 0, 'no draft on a locked image');
    assert.deepEqual((await admin(server, 'GET', '/locks')).locks.map((l) => l.image), [imageId]);
    // The moderator may still post.
    await post(grace, [0.6, 0.6], 'Locked for cleaning up');
    await waitFor(ada, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 2);
    // Ada's read-only view: the bar's padlock badge (the photo and its 20 px margin).
    await ada.screenshot({ path: join(SHOTS, 'locked.png'), clip: { x: 0, y: 0, width: 680, height: 440 } });

    // The admin API unlocks: Ada's controls come back live.
    await admin(server, 'DELETE', `/locks${q}`);
    await waitFor(ada, () => !document.querySelector('.image-chat').hasAttribute('data-locked'));
    await waitFor(ada, () => !document.querySelector('.image-chat').hasAttribute('data-read-only'));
    assert.equal(await lock.getAttribute('aria-pressed'), 'false');

    // The admin API deletes Ada's discussion: gone on both pages.
    await admin(server, 'DELETE', `/chats/${id}${q}`);
    for (const page of [ada, grace]) {
      await waitFor(page, (i) => !document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`), id);
    }

    // The admin API bans Ada (her id as her comments carry it): her next post fails visibly.
    const chats = (await admin(server, 'GET', `/chats${q}`)).chats;
    assert.equal(chats.length, 1);
    assert.equal(chats[0].opening.author.name, 'Grace');
    await post(ada, [0.2, 0.8], 'One more try');
    await waitFor(ada, () => document.querySelectorAll('.image-chat-marker[data-chat-id]:not([data-pending])').length === 2);
    const mine = (await admin(server, 'GET', `/chats${q}`)).chats.find((c) => c.opening.text === 'One more try');
    await admin(server, 'PUT', '/bans', { userId: mine.opening.author.id, reason: 'spam' });
    await post(ada, [0.8, 0.2], 'And again');
    await waitFor(ada, () => document.querySelector('.image-chat-marker[data-failed]'));
    const failed = ada.locator('.image-chat-thread .image-chat-error');
    await waitFor(ada, () => document.querySelector('.image-chat-thread .image-chat-error'));
    assert.match(await failed.first().textContent(), /You can no longer post on this site/);
    // Grace never saw it.
    assert.equal(await grace.locator('.image-chat-marker[data-chat-id]').count(), 2);
  } finally {
    for (const c of contexts) await c.close();
    await server.kill();
    server.cleanup();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
