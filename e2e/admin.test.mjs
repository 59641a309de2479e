// End-to-end: the site owner's dashboard at /admin in Chromium, against a real server with a
// tenant and its API key. Real discussions are written through the WebSocket protocol
// (ApiClient); the dashboard must show them: usage per day (chart), busiest images, recent
// activity newest first, the live connection count. A wrong key (and another tenant's key)
// is refused visibly; a hostile comment is shown as text; deleting a discussion and locking an
// image from the dashboard reach open WebSocket clients live; a server that goes away is
// reported. Takes the README screenshot docs/screenshots/admin.png. Every wait is on a
// condition with a bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer, launchBrowser, waitFor } from './harness.mjs';
import { ApiClient, newId } from './api.mjs';
import { axeReport } from './axe.mjs';

const KEY = 'admin-dash-api-key-0123456789abcdef0123456';
const OTHER_KEY = 'admin-dash-other-key-0123456789abcdef01234';
const SHOTS = join(ROOT, 'docs', 'screenshots');
const HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & "quotes"';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The next event `match` accepts, alone or inside a `batch` frame. */
function nextEvent(client, match) {
  return client
    .next((m) => match(m) || (m.type === 'batch' && m.events.some(match)))
    .then((m) => (m.type === 'batch' ? m.events.find(match) : m));
}

async function signIn(page, tenant, key) {
  // From the keyboard: the tenant field, Tab to the key, Enter submits.
  await page.locator('#tenant').fill('');
  await page.locator('#tenant').focus();
  await page.keyboard.type(tenant);
  await page.keyboard.press('Tab');
  await page.keyboard.type(key);
  await page.keyboard.press('Enter');
}

test('the dashboard shows usage, busiest images, activity and live count; deletes and locks live', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-admin-'));
  const tenants = join(dir, 'tenants.toml');
  writeFileSync(
    tenants,
    `[[tenant]]\nid = "demo"\nsecret = "admin-dash-sso-secret-0123456789abcdef0"\napi_key = "${KEY}"\norigins = ["localhost"]\nanonymous = "allow"\n` +
      `[[tenant]]\nid = "other"\nsecret = "admin-dash-sso-other-0123456789abcdef0"\napi_key = "${OTHER_KEY}"\norigins = ["https://other.example"]\nanonymous = "allow"\n`,
  );
  const server = await startServer({ args: ['--tenants', tenants], assets: false });
  const clients = [];
  const join_ = async (image, name) => {
    const c = await ApiClient.join(server.url, image, name);
    clients.push(c);
    return c;
  };
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  try {
    const run = newId().slice(0, 6);
    const imgA = `https://shop.example/photos/harbour-${run}.jpg`;
    const imgB = `https://shop.example/photos/bridge-${run}.jpg`;
    const imgC = `https://shop.example/photos/market-${run}.jpg`;
    // Written one after the other (a few ms apart, so "latest activity" is unambiguous).
    const ada = await join_(imgA, 'Ada');
    const watcher = await join_(imgA, 'Watcher');
    const bob = await join_(imgB, 'Bob');
    const cleo = await join_(imgC, 'Cleo');
    const created = [];
    const create = async (client, image, x, text) => {
      const { chatId } = await client.createChat(x, 0.5, text);
      created.push({ chatId, image, text });
      await sleep(5);
      return chatId;
    };
    const lighthouse = await create(ada, imgA, 0.2, 'Is that the old lighthouse?');
    await create(cleo, imgC, 0.3, 'Fresh figs on the left');
    const hostile = await create(ada, imgA, 0.4, HOSTILE);
    await create(bob, imgB, 0.5, 'Built in 1890');
    await create(cleo, imgC, 0.6, 'Who is the seller?');
    const boats = await create(ada, imgA, 0.7, 'Count the boats');
    // A reply makes the first discussion the most recently active.
    await watcher.reply(lighthouse, 'Yes, before 1920.');
    // Cleo leaves: 3 connections stay open (Ada and the watcher on A, Bob on B).
    cleo.close();

    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const cspViolations = [];
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    const response = await page.goto(`${server.url}/admin`);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self'(;|$)/, 'no inline or eval script allowed');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers()['x-content-type-options'], 'nosniff');

    assert.equal(await axeReport(page), '', 'the sign-in form is accessible');

    // A wrong key: a clear error, no dashboard.
    await signIn(page, 'demo', 'not-the-key');
    await waitFor(page, () => !document.querySelector('#error').hidden);
    assert.match(await page.locator('#error').textContent(), /Wrong tenant id or API key/);
    assert.equal(await page.locator('#dash').isVisible(), false);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused key is not kept');
    // Another tenant's key does not open this tenant either.
    await page.locator('#api-key').fill('');
    await signIn(page, 'demo', OTHER_KEY);
    await waitFor(page, () => document.activeElement?.id === 'api-key' && !document.querySelector('#error').hidden);
    assert.equal(await page.locator('#dash').isVisible(), false);

    // The right key.
    await page.locator('#api-key').fill('');
    await signIn(page, 'demo', KEY);
    await waitFor(page, () => !document.querySelector('#dash').hidden && document.querySelectorAll('#recent li').length > 0);
    assert.equal(await page.locator('#error').isVisible(), false, await page.locator('#error').textContent());
    assert.ok(!page.url().includes(KEY) && !page.url().includes('?'), 'the key is never in the URL');
    assert.equal(await page.locator('#who-tenant').textContent(), 'demo');

    // Live connections: the three sockets still open (polled; Cleo's close may take a moment).
    await waitFor(page, () => document.querySelector('#live-connections').textContent === '3');
    await page.locator('#refresh').click();
    await waitFor(page, () => document.querySelector('#status').textContent === 'Refreshed.');

    // Busiest images: A (3 discussions), C (2), B (1), with A's two viewers.
    const busiest = await page.$$eval('#busiest tbody tr', (rows) =>
      rows.map((r) => [...r.cells].slice(0, 3).map((c) => c.textContent)),
    );
    assert.deepEqual(busiest, [
      [imgA, '3', '2'],
      [imgC, '2', '0'],
      [imgB, '1', '1'],
    ]);

    // Recent activity: latest activity first (the replied-to discussion on top).
    const order = await page.$$eval('#recent li', (items) => items.map((li) => li.dataset.chatId));
    const expected = [lighthouse, ...created.filter((c) => c.chatId !== lighthouse).reverse().map((c) => c.chatId)];
    assert.deepEqual(order, expected);
    const first = page.locator(`#recent li[data-chat-id="${lighthouse}"]`);
    assert.match(await first.textContent(), /1 reply/);

    // Hostile text is shown as text, never parsed.
    const hostileItem = page.locator(`#recent li[data-chat-id="${hostile}"] .text`);
    assert.equal(await hostileItem.textContent(), HOSTILE);
    assert.equal(await page.locator('#recent img, #recent script').count(), 0);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);

    // Usage per day: today's bar of discussions is 6, comments 7 (6 openings + 1 reply).
    const today = new Date().toISOString().slice(0, 10);
    const bar = (metric) =>
      page.evaluate(
        ([m, d]) => {
          const select = document.querySelector('#metric');
          select.value = m;
          select.dispatchEvent(new Event('change'));
          const rect = document.querySelector(`#chart svg[data-metric="${m}"] rect[data-day="${d}"]`);
          return rect ? Number(rect.dataset.value) : null;
        },
        [metric, today],
      );
    assert.equal(await bar('discussions'), 6);
    assert.equal(await bar('comments'), 7);
    assert.ok((await bar('connections')) >= 4, 'the four sockets were admitted today');
    assert.ok((await bar('pubSubMessageCount')) > 0);
    assert.ok((await bar('pubSubBandwidth')) > 0);
    assert.equal(await page.locator('#chart svg rect.bar').count(), 30, 'thirty days, empty ones included');
    assert.match(await page.locator('#chart svg').getAttribute('aria-label'), /^Bytes sent per day/);
    await bar('pubSubMessageCount');

    // The README screenshot, before anything is removed.
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'admin.png'), fullPage: true });
    assert.equal(await axeReport(page), '', 'the dashboard is accessible');

    // Delete a discussion from the dashboard: the watcher on A sees it go, live.
    const gone = nextEvent(watcher, (m) => m.type === 'deleted-image-chat' && m.chatId === boats);
    const del = page.locator(`#recent li[data-chat-id="${boats}"] [data-action=delete]`);
    await del.click();
    assert.equal(await del.textContent(), 'Confirm delete');
    await del.click();
    await gone;
    await waitFor(page, (id) => !document.querySelector(`#recent li[data-chat-id="${id}"]`), boats);
    await waitFor(page, (img) => document.querySelector(`#busiest tr[data-image="${img}"] [data-chats]`)?.textContent === '2', imgA);

    // Lock image B from the busiest table: Bob's socket is told at once and may not write.
    const locked = nextEvent(bob, (m) => m.type === 'lock' && m.locked === true);
    await page.locator(`#busiest tr[data-image="${imgB}"] [data-action=lock]`).click();
    await locked;
    await waitFor(page, (img) => document.querySelector(`#busiest tr[data-image="${img}"] [data-action=unlock]`), imgB);
    await assert.rejects(bob.createChat(0.9, 0.9, 'still here?'), /image-locked/);
    // The activity list marks the image too, and unlocking reaches Bob the same way.
    const unlocked = nextEvent(bob, (m) => m.type === 'lock' && m.locked === false);
    await page.locator(`#busiest tr[data-image="${imgB}"] [data-action=unlock]`).click();
    await unlocked;
    await bob.createChat(0.9, 0.9, 'open again');

    // The live count follows connections.
    watcher.close();
    await waitFor(page, () => document.querySelector('#live-connections').textContent === '2');

    // The session survives a reload (sessionStorage), not a new tab's lifetime in a URL.
    await page.reload();
    await waitFor(page, () => !document.querySelector('#dash').hidden && document.querySelectorAll('#recent li').length > 0);

    // A phone: one column, nothing wider than the screen.
    await page.setViewportSize({ width: 360, height: 780 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);

    // The server goes away: the dashboard says so.
    await server.kill();
    await page.locator('#refresh').click();
    await waitFor(page, () => /Cannot reach the server/.test(document.querySelector('#error').textContent));
    assert.equal(await page.locator('#error').isVisible(), true);

    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  } finally {
    for (const c of clients) c.close();
    await context.close();
    await server.kill();
    server.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
