// End-to-end: the real widget in Debian's Chromium against the real server (a fresh SQLite file
// per test), driven as people use it. The demo page is served from its own origin (another
// port, harness.mjs startDemoSite), loading embed.js from the server's, as every real site does. Every wait is on a DOM condition with a bound; no fixed
// sleeps. Screenshots for the README are written to docs/screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, startDemoSite, launchBrowser, ROOT, WAIT_MS, waitFor } from './harness.mjs';
import { ApiClient } from './api.mjs';

const IMAGE_ID = 'demo-lakeside';
const SHOTS = join(ROOT, 'docs', 'screenshots');
mkdirSync(SHOTS, { recursive: true });

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs `body` with a fresh server (`options` for startServer); stops it (and removes its
 *  database, and closes its demo site) afterwards. */
async function withServer(body, options = {}) {
  const server = await startServer(options);
  try {
    await body(server);
  } finally {
    await server.kill();
    await server.site?.close();
    server.cleanup();
  }
}

/** Opens the demo page the way sites embed the widget: from its own origin (`server.site`,
 *  started on first use), loading embed.js from the server's. */
async function openDemo(context, server, query = '') {
  server.site ??= await startDemoSite(server);
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
  await page.goto(`${server.site.url}${query}`);
  await waitState(page, 'live');
  return page;
}

function waitState(page, state) {
  return waitFor(page, (s) => document.querySelector('.image-chat')?.dataset.state === s, state);
}

/** Clicks the picture at fractions (fx, fy) of its size and posts `text` from the draft. */
async function placeMarker(page, fx, fy, text) {
  const box = await page.locator('#demo-image').boundingBox();
  await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
  await page.locator('.image-chat-thread[data-draft] textarea').fill(text);
  // Post and look at the DOM in the same task: no server answer can have arrived yet, so what
  // we see is the optimistic rendering.
  return page.evaluate(() => {
    const before = new Set([...document.querySelectorAll('.image-chat-marker[data-chat-id]')].map((m) => m.dataset.chatId));
    document.querySelector('.image-chat-thread[data-draft] [data-action=post]').click();
    const added = [...document.querySelectorAll('.image-chat-marker[data-chat-id]')].filter((m) => !before.has(m.dataset.chatId));
    return added.map((m) => ({ chatId: m.dataset.chatId, pending: m.hasAttribute('data-pending'), failed: m.hasAttribute('data-failed') }));
  });
}

function markerCount(page, chatId) {
  return page.locator(`.image-chat-marker[data-chat-id="${chatId}"]`).count();
}

function waitMarker(page, chatId, present = true) {
  return waitFor(
    page,
    ([id, want]) => !!document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`) === want,
    [chatId, present],
  );
}

async function openThread(page, chatId) {
  await page.locator(`.image-chat-marker[data-chat-id="${chatId}"]`).click();
  await page.locator(`.image-chat-thread[data-chat-id="${chatId}"]`).waitFor({ timeout: WAIT_MS });
}

function commentTexts(page, chatId) {
  return page.evaluate(
    (id) => [...document.querySelectorAll(`.image-chat-thread[data-chat-id="${id}"] .image-chat-comment .image-chat-text`)].map((e) => e.textContent),
    chatId,
  );
}

function waitComments(page, chatId, texts) {
  return waitFor(
    page,
    ([id, want]) => {
      const got = [...document.querySelectorAll(`.image-chat-thread[data-chat-id="${id}"] .image-chat-comment .image-chat-text`)].map((e) => e.textContent);
      return JSON.stringify(got) === JSON.stringify(want);
    },
    [chatId, texts],
  );
}

/** Marker centre as fractions of the image's box. */
function markerFraction(page, chatId) {
  return page.evaluate((id) => {
    const img = document.querySelector('#demo-image').getBoundingClientRect();
    const m = document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).getBoundingClientRect();
    return { x: (m.left + m.width / 2 - img.left) / img.width, y: (m.top + m.height / 2 - img.top) / img.height };
  }, chatId);
}

async function snapshot(server) {
  const res = await fetch(`${server.url}/api/v1/tenants/demo/snapshot?image=${encodeURIComponent(IMAGE_ID)}`);
  assert.equal(res.status, 200);
  return res.json();
}

test('two users: create, reply, edit, delete — live both ways, own changes once and at once', async () => {
  await withServer(async (server) => {
    const ctxA = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const ctxB = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const a = await openDemo(ctxA, server);
    const b = await openDemo(ctxB, server);

    const [created] = await placeMarker(a, 0.3, 0.4, 'What is this boat doing here?');
    assert.ok(created, 'the marker is shown at once');
    assert.equal(created.pending, true, 'shown before the server answered (pending)');
    const { chatId } = created;

    await waitMarker(b, chatId);
    await waitFor(a, (id) => !document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).hasAttribute('data-pending'), chatId);
    assert.equal(await markerCount(a, chatId), 1, 'the echo is not applied twice');

    await openThread(b, chatId);
    await waitComments(b, chatId, ['What is this boat doing here?']);
    await b.locator(`.image-chat-thread[data-chat-id="${chatId}"] .image-chat-compose textarea`).fill('Sailing, obviously.');
    await b.locator(`.image-chat-thread[data-chat-id="${chatId}"] [data-action=reply]`).click();

    // A's thread is still open: B's reply shows up there.
    await waitComments(a, chatId, ['What is this boat doing here?', 'Sailing, obviously.']);
    await a.screenshot({ path: join(SHOTS, 'thread.png') });

    const mine = a.locator(`.image-chat-thread[data-chat-id="${chatId}"] .image-chat-comment[data-mine]`);
    assert.equal(await mine.count(), 1);
    await mine.locator('[data-action=edit]').click();
    await a.locator('textarea.image-chat-edit').fill('What is this boat doing here? (edited)');
    await a.locator('[data-action=save-edit]').click();
    await waitComments(b, chatId, ['What is this boat doing here? (edited)', 'Sailing, obviously.']);
    assert.deepEqual(await commentTexts(a, chatId), ['What is this boat doing here? (edited)', 'Sailing, obviously.']);

    await a.locator(`.image-chat-thread[data-chat-id="${chatId}"] [data-action=delete]`).click();
    await a.locator(`.image-chat-thread[data-chat-id="${chatId}"] [data-action=delete]`).click(); // confirm
    await waitMarker(b, chatId, false);
    await waitMarker(a, chatId, false);
    assert.equal((await snapshot(server)).chats.length, 0);
    await ctxA.close();
    await ctxB.close();
  });
});

test('the server\'s own TLS: two users live over wss://, written by the server itself', async () => {
  await withServer(async (server) => {
    // The server speaks only TLS on its port, so a widget that reaches "live" is on wss://.
    assert.match(server.url, /^https:\/\//);
    // The certificate is made for this run; the browsers accept it as they would a real one.
    const options = { viewport: { width: 1100, height: 900 }, ignoreHTTPSErrors: true };
    const ctxA = await browser.newContext(options);
    const ctxB = await browser.newContext(options);
    const a = await openDemo(ctxA, server);
    const b = await openDemo(ctxB, server);

    const [created] = await placeMarker(a, 0.6, 0.3, 'Does this reach you over TLS?');
    assert.ok(created, 'the marker is shown at once');
    const { chatId } = created;
    await waitMarker(b, chatId);
    await waitFor(a, (id) => !document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).hasAttribute('data-pending'), chatId);
    assert.equal(await markerCount(a, chatId), 1, 'the echo is not applied twice');

    // A's thread stays open after posting: B's reply shows up there.
    await openThread(b, chatId);
    await b.locator(`.image-chat-thread[data-chat-id="${chatId}"] .image-chat-compose textarea`).fill('Yes, encrypted.');
    await b.locator(`.image-chat-thread[data-chat-id="${chatId}"] [data-action=reply]`).click();
    await waitComments(a, chatId, ['Does this reach you over TLS?', 'Yes, encrypted.']);
    await ctxA.close();
    await ctxB.close();
  }, { tls: true });
});

test('cross-tab: one person in two tabs stays in sync both ways', async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext();
    const tab1 = await openDemo(ctx, server);
    const tab2 = await openDemo(ctx, server);
    const [one] = await placeMarker(tab1, 0.2, 0.2, 'from tab 1');
    await waitMarker(tab2, one.chatId);
    const [two] = await placeMarker(tab2, 0.7, 0.6, 'from tab 2');
    await waitMarker(tab1, two.chatId);
    // Same person (same stored anonymous token): both tabs may edit both comments.
    await openThread(tab2, one.chatId);
    assert.equal(await tab2.locator(`.image-chat-thread[data-chat-id="${one.chatId}"] .image-chat-comment[data-mine]`).count(), 1);
    assert.equal(await markerCount(tab1, one.chatId), 1);
    assert.equal(await markerCount(tab2, two.chatId), 1);
    await ctx.close();
  });
});

test('live user count counts people, not tabs, and goes up and down', async () => {
  await withServer(async (server) => {
    // A browser context is one person (one stored anonymous token); a second context is
    // another person.
    const alice = await browser.newContext();
    const bob = await browser.newContext();
    const online = (page, n) => waitFor(page, (want) => document.querySelector('.image-chat-online')?.dataset.count === String(want), n);
    const a = await openDemo(alice, server);
    await online(a, 1);
    const b = await openDemo(bob, server);
    await online(a, 2);
    // Alice's second tab is not a third person.
    const a2 = await openDemo(alice, server);
    await online(a2, 2);
    await online(b, 2);
    // Two people in three tabs; Bob leaves: one person left.
    await b.close();
    await online(a, 1);
    await online(a2, 1);
    await alice.close();
    await bob.close();
  });
});

test('server killed: reconnecting, create fails (not queued), missed changes arrive on their own', async () => {
  const server = await startServer();
  let restarted;
  try {
    const ctxA = await browser.newContext();
    const ctxB = await browser.newContext();
    const a = await openDemo(ctxA, server);
    const b = await openDemo(ctxB, server);
    const api = await ApiClient.join(server.url, IMAGE_ID);
    const before = await api.createChat(0.5, 0.5, 'before the crash');
    await waitMarker(a, before.chatId);
    await waitMarker(b, before.chatId);
    api.close();

    await server.kill();
    await waitState(a, 'reconnecting');
    await waitState(b, 'reconnecting');

    const [attempt] = await placeMarker(a, 0.8, 0.2, 'written while the server is down');
    assert.equal(attempt.failed, true, 'fails at once, visibly');
    await a.locator(`.image-chat-marker[data-chat-id="${attempt.chatId}"]`).waitFor();
    const error = await a.locator('.image-chat-error').first().textContent();
    assert.ok(error && error.length > 0, 'a reason is shown');
    assert.equal(await a.locator('[data-action=retry]').count() > 0, true, 'a retry affordance');

    restarted = await startServer({ dbDir: server.dir, port: server.port });
    const api2 = await ApiClient.join(restarted.url, IMAGE_ID);
    const missed1 = await api2.createChat(0.1, 0.9, 'missed one');
    await api2.reply(before.chatId, 'missed reply');
    api2.close();

    for (const page of [a, b]) {
      await waitState(page, 'live');
      await waitMarker(page, missed1.chatId);
      assert.equal(await markerCount(page, missed1.chatId), 1);
      assert.equal(await markerCount(page, before.chatId), 1);
    }
    await openThread(b, before.chatId);
    await waitComments(b, before.chatId, ['before the crash', 'missed reply']);

    // The failed create was not queued: the server never got it, and A still shows it failed.
    const snap = await snapshot(restarted);
    assert.deepEqual(snap.chats.map((c) => c.comments[0].text).sort(), ['before the crash', 'missed one']);
    assert.equal(await a.locator(`.image-chat-marker[data-chat-id="${attempt.chatId}"][data-failed]`).count(), 1);
    await ctxA.close();
    await ctxB.close();
  } finally {
    await server.kill();
    await restarted?.kill();
    await server.site?.close();
    server.cleanup();
  }
});

test('browser offline: readable, create refused with a message; back online resyncs', async () => {
  await withServer(async (server) => {
    const ctxA = await browser.newContext();
    const a = await openDemo(ctxA, server);
    const api = await ApiClient.join(server.url, IMAGE_ID);
    const existing = await api.createChat(0.4, 0.3, 'readable offline');
    await waitMarker(a, existing.chatId);

    await ctxA.setOffline(true);
    await waitState(a, 'offline');
    await openThread(a, existing.chatId);
    await waitComments(a, existing.chatId, ['readable offline']);
    await a.keyboard.press('Escape');

    const [attempt] = await placeMarker(a, 0.6, 0.7, 'typed offline');
    assert.equal(attempt.failed, true);
    const reason = await a.locator(`.image-chat-thread[data-chat-id="${attempt.chatId}"] .image-chat-comment .image-chat-error`).textContent();
    assert.match(reason, /offline/i);
    await a.screenshot({ path: join(SHOTS, 'offline.png') });

    const whileAway = await api.createChat(0.9, 0.9, 'while you were offline');
    await ctxA.setOffline(false);
    await waitState(a, 'live');
    await waitMarker(a, whileAway.chatId);
    assert.equal((await snapshot(server)).chats.length, 2, 'the offline attempt never reached the server');
    api.close();
    await ctxA.close();
  });
});

test('resize: markers stay on the same image point', async () => {
  await withServer(async (server) => {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const a = await openDemo(ctx, server);
    const [m] = await placeMarker(a, 0.62, 0.35, 'the sun');
    await waitFor(a, (id) => !document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).hasAttribute('data-pending'), m.chatId);
    const wide = await markerFraction(a, m.chatId);
    const wideWidth = (await a.locator('#demo-image').boundingBox()).width;
    await a.setViewportSize({ width: 480, height: 800 });
    await waitFor(a, (w) => document.querySelector('#demo-image').getBoundingClientRect().width < w - 100, wideWidth);
    // Wait for the overlay to follow the new size, then compare.
    await waitFor(a, ([id, want]) => {
      const img = document.querySelector('#demo-image').getBoundingClientRect();
      const r = document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`).getBoundingClientRect();
      const x = (r.left + r.width / 2 - img.left) / img.width;
      return Math.abs(x - want) < 0.01;
    }, [m.chatId, wide.x]);
    const narrow = await markerFraction(a, m.chatId);
    assert.ok(Math.abs(narrow.x - 0.62) < 0.01 && Math.abs(narrow.y - 0.35) < 0.01, JSON.stringify(narrow));
    assert.ok(Math.abs(wide.x - 0.62) < 0.01 && Math.abs(wide.y - 0.35) < 0.01, JSON.stringify(wide));
    await ctx.close();
  });
});

test('keyboard only: reach a marker, open it, reply, close', async () => {
  await withServer(async (server) => {
    const api = await ApiClient.join(server.url, IMAGE_ID);
    const { chatId } = await api.createChat(0.3, 0.6, 'reply to me with the keyboard');
    const ctx = await browser.newContext();
    const a = await openDemo(ctx, server);
    await waitMarker(a, chatId);

    let onMarker = false;
    for (let i = 0; i < 40 && !onMarker; i++) {
      await a.keyboard.press('Tab');
      onMarker = await a.evaluate((id) => document.activeElement?.dataset?.chatId === id, chatId);
    }
    assert.ok(onMarker, 'the marker is reachable with Tab');
    await a.keyboard.press('Enter');
    await a.locator(`.image-chat-thread[data-chat-id="${chatId}"]`).waitFor();
    const focusInThread = await a.evaluate(() => !!document.activeElement?.closest('.image-chat-thread'));
    assert.ok(focusInThread, 'focus moves into the thread');

    // Reach the reply box by keyboard.
    let inReply = false;
    for (let i = 0; i < 20 && !inReply; i++) {
      inReply = await a.evaluate(() => document.activeElement?.matches('.image-chat-compose textarea') ?? false);
      if (!inReply) await a.keyboard.press('Tab');
    }
    assert.ok(inReply, 'the reply box is reachable with Tab');
    await a.keyboard.type('typed without a mouse');
    await a.keyboard.press('Control+Enter');
    await waitComments(a, chatId, ['reply to me with the keyboard', 'typed without a mouse']);
    const reply = await api.next((m) => m.type === 'image-chat-updated');
    assert.equal(reply.change.comment.text, 'typed without a mouse');

    await a.keyboard.press('Escape');
    await waitFor(a, () => !document.querySelector('.image-chat-thread'));
    assert.ok(await a.evaluate((id) => document.activeElement?.dataset?.chatId === id, chatId), 'focus returns to the marker');
    api.close();
    await ctx.close();
  });
});

test('markup in a comment is shown as text and runs nothing', async () => {
  await withServer(async (server) => {
    const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold?</b>';
    const ctx = await browser.newContext();
    const a = await openDemo(ctx, server);
    const b = await openDemo(await browser.newContext(), server);
    const [m] = await placeMarker(a, 0.5, 0.5, hostile);
    await waitMarker(b, m.chatId);
    await openThread(b, m.chatId);
    await waitComments(b, m.chatId, [hostile]);
    for (const page of [a, b]) {
      const result = await page.evaluate(() => ({
        pwned: window.__pwned,
        injected: document.querySelectorAll('.image-chat-thread img, .image-chat-thread script, .image-chat-thread b').length,
      }));
      assert.deepEqual(result, { pwned: undefined, injected: 0 });
    }
    await ctx.close();
  });
});

test('screenshots: light, dark and a phone', async () => {
  await withServer(async (server) => {
    const api = await ApiClient.join(server.url, IMAGE_ID, 'Ada');
    const sun = await api.createChat(0.62, 0.3, 'Is the sun setting or rising here?');
    await api.reply(sun.chatId, 'Setting — the shadows point east.');
    await api.createChat(0.3, 0.72, 'Lovely reflection on the water.');
    await api.createChat(0.82, 0.55, 'The boat needs a name!');

    const light = await browser.newContext({ viewport: { width: 1000, height: 760 }, colorScheme: 'light' });
    const pl = await openDemo(light, server);
    await waitFor(pl, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 3);
    await pl.screenshot({ path: join(SHOTS, 'light.png') });

    const dark = await browser.newContext({ viewport: { width: 1000, height: 760 }, colorScheme: 'dark' });
    const pd = await openDemo(dark, server, '?theme=dark');
    await waitFor(pd, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 3);
    await openThread(pd, sun.chatId);
    await pd.screenshot({ path: join(SHOTS, 'dark.png') });

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const pm = await openDemo(phone, server);
    await waitFor(pm, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 3);
    const box = await pm.locator('#demo-image').boundingBox();
    await pm.touchscreen.tap(box.x + box.width * 0.5, box.y + box.height * 0.45);
    await pm.locator('.image-chat-thread[data-draft]').waitFor();
    await pm.screenshot({ path: join(SHOTS, 'mobile.png') });
    api.close();
    await light.close();
    await dark.close();
    await phone.close();
  });
});
