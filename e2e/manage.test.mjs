// End-to-end: managing discussions with two people in Chromium, against the real server, the
// host page on its own origin (startHostServer) loading the widget cross-origin. Ada (anonymous)
// and Grace (signed in by the site, a moderator) each see the other's changes live: a reply
// deleted (only by its author or a moderator; the opening comment has no delete), a marker
// dragged with the mouse and moved with the arrow keys, a discussion resolved (muted, collapsed,
// hidden by the bar's filter) and reopened, a region drawn out on the picture, a discussion
// opened from its link, and a resolve attempted offline failing at once, visibly. The README
// screenshots of a resolved discussion and of a region are taken here. Every wait is on a DOM
// condition with a bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer, startHostServer, launchBrowser, waitFor } from './harness.mjs';
import { newId, signSso } from './api.mjs';

const SECRET = 'manage-e2e-secret-0123456789abcdef0123';
const SHOTS = join(ROOT, 'docs', 'screenshots');

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** A user signed for this file's tenant secret. */
function sso(user, tenant, server) {
  return signSso(SECRET, user, tenant, server);
}

function hostPage(server, imageId, { auth } = {}) {
  const authAttr = auth ? ` data-auth='${JSON.stringify(auth)}'` : '';
  return {
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>manage</title></head>
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

/** The marker's centre as fractions of the picture. */
function markerAt(page, id) {
  return page.evaluate((i) => {
    const m = document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`).getBoundingClientRect();
    const p = document.querySelector('#photo').getBoundingClientRect();
    return [
      Math.round(((m.left + m.width / 2 - p.left) / p.width) * 100) / 100,
      Math.round(((m.top + m.height / 2 - p.top) / p.height) * 100) / 100,
    ];
  }, id);
}

/** Waits until the marker `id` sits at (x, y) (fractions, to the hundredth). */
function markerMovedTo(page, id, [x, y]) {
  return waitFor(
    page,
    ([i, x, y]) => {
      const m = document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`);
      if (!m || m.hasAttribute('data-pending')) return false;
      const r = m.getBoundingClientRect();
      const p = document.querySelector('#photo').getBoundingClientRect();
      const fx = (r.left + r.width / 2 - p.left) / p.width;
      const fy = (r.top + r.height / 2 - p.top) / p.height;
      return Math.abs(fx - x) < 0.006 && Math.abs(fy - y) < 0.006;
    },
    [id, x, y],
  );
}

async function openThread(page, id) {
  const open = await page.locator(`.image-chat-thread[data-chat-id="${id}"]`).count();
  if (!open) await page.locator(`.image-chat-marker[data-chat-id="${id}"]`).click();
  await waitFor(page, (i) => document.querySelector(`.image-chat-thread[data-chat-id="${i}"]`), id);
  return page.locator(`.image-chat-thread[data-chat-id="${id}"]`);
}

async function reply(page, id, text) {
  const thread = await openThread(page, id);
  await thread.locator('.image-chat-compose textarea').fill(text);
  await thread.locator('[data-action=reply]').click();
  await waitFor(page, (i) => !document.querySelector(`.image-chat-thread[data-chat-id="${i}"] [data-pending]`), id);
}

function texts(page, id) {
  return page.evaluate(
    (i) => [...document.querySelectorAll(`.image-chat-thread[data-chat-id="${i}"] .image-chat-comment .image-chat-text`)].map((t) => t.textContent),
    id,
  );
}

test('two people delete replies, move, resolve, draw regions and link discussions, live', async () => {
  const pages = {};
  const host = await startHostServer({ pages });
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-manage-'));
  const tenants = join(dir, 'tenants.toml');
  writeFileSync(
    tenants,
    `[[tenant]]\nid = "site"\nsecret = "${SECRET}"\norigins = ["${host.origin}"]\nanonymous = "allow"\n`,
  );
  const server = await startServer({ args: ['--tenants', tenants] });
  const contexts = [];
  try {
    const imageId = `manage-${newId()}`;
    pages['/index.html'] = hostPage(server, imageId);
    pages['/grace.html'] = hostPage(server, imageId, {
      auth: sso({ id: 'g-1', name: 'Grace', isModerator: true, avatar: 'https://example.invalid/g.png' }, 'site', server),
    });
    const adaCtx = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const graceCtx = await browser.newContext({ viewport: { width: 900, height: 700 } });
    await graceCtx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: host.origin });
    contexts.push(adaCtx, graceCtx);
    const ada = await open(adaCtx, host.url);
    const grace = await open(graceCtx, `${host.origin}/grace.html`);

    // Ada starts a discussion; both reply.
    const photo = await ada.locator('#photo').boundingBox();
    await ada.mouse.click(photo.x + 0.3 * photo.width, photo.y + 0.4 * photo.height);
    await ada.locator('.image-chat-thread[data-draft] textarea').fill('The jetty looks crooked');
    await ada.locator('.image-chat-thread[data-draft] [data-action=post]').click();
    await waitFor(ada, () => document.querySelector('.image-chat-marker[data-chat-id]:not([data-pending])'));
    const id = await ada.locator('.image-chat-marker[data-chat-id]').first().getAttribute('data-chat-id');
    await waitFor(grace, (i) => document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`), id);
    assert.match(
      await grace.locator(`.image-chat-marker[data-chat-id="${id}"]`).getAttribute('aria-label'),
      /^Discussion by Guest: “The jetty looks crooked”/,
      "the author's name is in the marker's accessible name",
    );
    await reply(grace, id, 'It is the lens, not the jetty.');
    await reply(ada, id, 'Typo in my first reply');
    await waitFor(grace, (i) => document.querySelectorAll(`.image-chat-thread[data-chat-id="${i}"] .image-chat-comment`).length === 3, id);

    // Avatars: Grace's picture (https), Ada's initial.
    const adaThread = await openThread(ada, id);
    assert.equal(await adaThread.locator('img.image-chat-avatar').first().getAttribute('src'), 'https://example.invalid/g.png');
    assert.equal(await adaThread.locator('span.image-chat-avatar').first().textContent(), 'G');

    // Deleting a reply: not the opening comment, not Grace's; her own, after confirming.
    const comments = adaThread.locator('.image-chat-comment');
    assert.equal(await comments.nth(0).locator('[data-action=delete-comment]').count(), 0);
    assert.equal(await comments.nth(1).locator('[data-action=delete-comment]').count(), 0);
    const del = comments.nth(2).locator('[data-action=delete-comment]');
    await del.click();
    assert.equal(await del.textContent(), 'Really delete?');
    await del.click();
    await waitFor(grace, (i) => document.querySelectorAll(`.image-chat-thread[data-chat-id="${i}"] .image-chat-comment`).length === 2, id);
    assert.deepEqual(await texts(grace, id), ['The jetty looks crooked', 'It is the lens, not the jetty.']);
    assert.equal(await grace.locator('.image-chat-sr').textContent(), 'A reply was deleted');

    // Moving: Ada drags her marker; Grace sees it land.
    await ada.keyboard.press('Escape');
    const marker = ada.locator(`.image-chat-marker[data-chat-id="${id}"]`);
    const m = await marker.boundingBox();
    await ada.mouse.move(m.x + m.width / 2, m.y + m.height / 2);
    await ada.mouse.down();
    await ada.mouse.move(photo.x + 0.55 * photo.width, photo.y + 0.5 * photo.height, { steps: 8 });
    await ada.mouse.move(photo.x + 0.6 * photo.width, photo.y + 0.6 * photo.height, { steps: 4 });
    await ada.mouse.up();
    await markerMovedTo(grace, id, [0.6, 0.6]);
    assert.equal(await ada.locator('.image-chat-thread').count(), 0, 'the drag did not open the thread');
    // And with the keyboard: two steps right (2 % each), Enter.
    await marker.focus();
    await ada.keyboard.press('ArrowRight');
    await ada.keyboard.press('ArrowRight');
    await ada.keyboard.press('Enter');
    await markerMovedTo(grace, id, [0.64, 0.6]);
    assert.deepEqual(await markerAt(ada, id), [0.64, 0.6]);

    // Grace (a moderator) resolves Ada's discussion: muted and collapsed for Ada, live.
    const graceThread = await openThread(grace, id);
    await graceThread.locator('[data-action=resolve]').click();
    await waitFor(ada, (i) => document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`).hasAttribute('data-resolved'), id);
    const resolvedThread = await openThread(ada, id);
    assert.equal(await resolvedThread.getAttribute('data-collapsed'), '');
    assert.match(await resolvedThread.locator('.image-chat-head').textContent(), /Resolved/);
    assert.equal(await resolvedThread.locator('[data-action=resolve]').textContent(), 'Reopen');
    await ada.screenshot({ path: join(SHOTS, 'resolved.png') });
    await resolvedThread.locator('[data-action=show-thread]').click();
    assert.equal(await resolvedThread.getAttribute('data-collapsed'), null);
    // The bar's filter hides it.
    await ada.keyboard.press('Escape');
    await ada.locator('.image-chat-bar .image-chat-filter').click();
    assert.equal(await marker.isVisible(), false);
    await ada.locator('.image-chat-bar .image-chat-filter').click();
    assert.equal(await marker.isVisible(), true);

    // Offline, reopening fails at once, in words, with the page told; nothing is sent later.
    const failures = ada.evaluate(
      () => new Promise((resolve) => {
        document.querySelector('#photo').addEventListener('image-chat:op-failed', (e) => resolve(e.detail), { once: true });
      }),
    );
    await adaCtx.setOffline(true);
    await waitFor(ada, () => document.querySelector('.image-chat').dataset.state === 'offline');
    const offlineThread = await openThread(ada, id);
    await offlineThread.locator('[data-action=resolve]').click();
    const failure = await failures;
    assert.equal(failure.kind, 'resolve');
    assert.equal(failure.reason, 'offline');
    assert.match(failure.op, /^[A-Za-z0-9_-]{22}$/);
    await waitFor(ada, () => document.querySelector('.image-chat-chat-error:not([hidden]) .image-chat-error'));
    assert.match(await offlineThread.locator('.image-chat-chat-error .image-chat-error').textContent(), /You are offline/);
    assert.equal(await marker.getAttribute('data-resolved'), '', 'still resolved: nothing changed');
    await offlineThread.locator('.image-chat-chat-error [data-action=dismiss]').click();
    await adaCtx.setOffline(false);
    await waitFor(ada, () => document.querySelector('.image-chat').dataset.state === 'live');

    // Ada draws out a region and posts on it; Grace sees the box with its marker at its corner.
    await ada.keyboard.press('Escape');
    await ada.mouse.move(photo.x + 0.1 * photo.width, photo.y + 0.12 * photo.height);
    await ada.mouse.down();
    await ada.mouse.move(photo.x + 0.25 * photo.width, photo.y + 0.2 * photo.height, { steps: 6 });
    await ada.mouse.move(photo.x + 0.35 * photo.width, photo.y + 0.32 * photo.height, { steps: 6 });
    await ada.mouse.up();
    await ada.locator('.image-chat-thread[data-draft] textarea').fill('The whole boat shed is soft');
    await ada.locator('.image-chat-thread[data-draft] [data-action=post]').click();
    await waitFor(grace, () => document.querySelector('.image-chat-region[data-chat-id]'));
    const regionId = await grace.locator('.image-chat-region[data-chat-id]').getAttribute('data-chat-id');
    const box = await grace.locator('.image-chat-region').boundingBox();
    const gphoto = await grace.locator('#photo').boundingBox();
    const frac = (v, o, s) => Math.round(((v - o) / s) * 100) / 100;
    assert.deepEqual(
      [frac(box.x, gphoto.x, gphoto.width), frac(box.y, gphoto.y, gphoto.height), frac(box.x + box.width, gphoto.x, gphoto.width), frac(box.y + box.height, gphoto.y, gphoto.height)],
      [0.1, 0.12, 0.35, 0.32],
    );
    assert.deepEqual(await markerAt(grace, regionId), [0.1, 0.12], 'its marker is at the top-left corner');
    const regionThread = await openThread(grace, regionId);
    await grace.screenshot({ path: join(SHOTS, 'region.png') });

    // Copy link gives the page's URL naming the discussion; that link opens it on another
    // visit (and open() from code opens another one).
    await regionThread.locator('[data-action=copy-link]').click();
    assert.equal(await regionThread.locator('[data-action=copy-link]').textContent(), 'Link copied');
    const link = await grace.evaluate(() => navigator.clipboard.readText());
    assert.equal(link, `${host.origin}/grace.html#image-chat=${regionId}`);
    const linked = await browser.newContext();
    contexts.push(linked);
    const visitor = await linked.newPage();
    await visitor.goto(link.replace('/grace.html', '/'));
    await waitFor(visitor, (i) => document.querySelector(`.image-chat-thread[data-chat-id="${i}"]`), regionId);
    await visitor.evaluate((i) => window.ImageChat.ready.then((C) => C.instances[0].open(i)), id);
    await waitFor(visitor, (i) => document.querySelector(`.image-chat-thread[data-chat-id="${i}"]`), id);
  } finally {
    for (const c of contexts) await c.close();
    await server.kill();
    server.cleanup();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
