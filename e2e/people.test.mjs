// End-to-end: people and dense images, the way sites embed the widget: every host page is served
// from its own origin (startHostServer), the widget loads cross-origin from the real server.
// Names chosen on the first post (seen by others, remembered on the site, refused when
// invisible), badges a typed name cannot imitate (a signed moderator, "you"), and a dense
// image's clusters and markers toggle driven from the keyboard. Every wait is on a DOM
// condition with a bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, startHostServer, launchBrowser, waitFor } from './harness.mjs';
import { ApiClient, newId, signSso } from './api.mjs';

const SECRET = 'people-e2e-secret-0123456789abcdef0123';

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

/**
 * The host page: one image marked for the widget, the documented script tag. `responsive`:
 * a 1200 × 750 picture shrunk to the screen's width, as sites show one on a phone.
 */
function hostPage(server, tenant, imageId, { auth, responsive } = {}) {
  const authAttr = auth ? ` data-auth='${JSON.stringify(auth)}'` : '';
  const [meta, size] = responsive
    ? ['<meta name="viewport" content="width=device-width, initial-scale=1">',
      'width="1200" height="750" style="display:block;max-width:100%;height:auto"']
    : ['', 'width="600" height="375"'];
  return {
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>people</title>${meta}</head>
<body style="margin:0">
<img id="photo" src="${server.url}/sample.svg" ${size} alt="Lakeside"
  data-image-chat="${imageId}"${authAttr}>
<script src="${server.url}/embed.js" data-tenant="${tenant}" data-locale="en" defer></script>
</body></html>`,
  };
}

/**
 * Runs `body(server, host, pages)` with a server whose tenant `site` signs users in with SECRET
 * and allows the host site's origin and anonymous people, and that host site on another
 * origin; `body` fills `pages` (read on each request) once it knows the server's URL.
 */
async function withSite(body) {
  const pages = {};
  const host = await startHostServer({ pages });
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-people-'));
  const tenants = join(dir, 'tenants.toml');
  writeFileSync(
    tenants,
    `[[tenant]]\nid = "site"\nsecret = "${SECRET}"\norigins = ["${host.origin}"]\nanonymous = "allow"\n`,
  );
  const server = await startServer({ args: ['--tenants', tenants] });
  try {
    await body(server, host, pages);
  } finally {
    await server.kill();
    server.cleanup();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
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

/** Clicks the picture at (fx, fy), fills the draft (name only if `name` is given), posts. */
async function post(page, fx, fy, text, name) {
  const box = await page.locator('#photo').boundingBox();
  await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
  const draft = page.locator('.image-chat-thread[data-draft]');
  await draft.locator('textarea').fill(text);
  if (name !== undefined) await draft.locator('input.image-chat-name').fill(name);
  await draft.locator('[data-action=post]').click();
}

/** The comments of the thread of the discussion whose first text is `text`, as shown. */
async function commentsOf(page, text) {
  await waitFor(
    page,
    (t) => [...document.querySelectorAll('.image-chat-marker[data-chat-id]')].some((m) => m.getAttribute('aria-label').includes(t)),
    text,
  );
  const id = await page.evaluate(
    (t) => [...document.querySelectorAll('.image-chat-marker[data-chat-id]')].find((m) => m.getAttribute('aria-label').includes(t)).dataset.chatId,
    text,
  );
  await page.evaluate((i) => {
    const open = document.querySelector(`.image-chat-thread[data-chat-id="${i}"]`);
    if (!open) document.querySelector(`.image-chat-marker[data-chat-id="${i}"]`).click();
  }, id);
  await waitFor(page, (i) => !document.querySelector(`.image-chat-thread[data-chat-id="${i}"] [data-pending]`), id);
  return page.evaluate(
    (i) =>
      [...document.querySelectorAll(`.image-chat-thread[data-chat-id="${i}"] .image-chat-comment`)].map((c) => ({
        author: c.querySelector('.image-chat-author').textContent,
        badges: [...c.querySelectorAll('.image-chat-badge')].map((b) => b.dataset.badge),
        text: c.querySelector('.image-chat-text').textContent,
      })),
    id,
  );
}

test('a name chosen on the first post is seen by others and remembered; badges cannot be imitated', async () => {
  await withSite(async (server, hostWithPages, pages) => {
    const imageId = `people-${newId()}`;
    pages['/index.html'] = hostPage(server, 'site', imageId);
    pages['/signed.html'] = hostPage(server, 'site', imageId, {
      auth: sso({ id: 'u-42', name: 'Grace', isModerator: true }, 'site', server),
    });
    {
      const anonCtx = await browser.newContext();
      const signedCtx = await browser.newContext();
      const ada = await open(anonCtx, hostWithPages.url);
      // An invisible name is refused in words before anything is sent.
      await post(ada, 0.3, 0.3, 'Hello from the lake', '\u200b\u202e\u2066');
      const error = ada.locator('.image-chat-thread[data-draft] .image-chat-error');
      await waitFor(ada, () => !document.querySelector('.image-chat-thread[data-draft] .image-chat-error')?.hidden);
      assert.equal(await error.textContent(), 'The name needs at least one visible character.');
      assert.equal(await ada.locator('.image-chat-marker[data-chat-id]').count(), 0);
      // A name that reads like a badge: it stays part of the name, and earns no badge.
      await ada.locator('.image-chat-thread[data-draft] input.image-chat-name').fill('Ada (you) moderator');
      await ada.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      assert.deepEqual(await commentsOf(ada, 'Hello from the lake'), [
        { author: 'Ada (you) moderator', badges: ['you'], text: 'Hello from the lake' },
      ]);

      // A signed moderator sees the name, with no badge at all, and replies.
      const grace = await open(signedCtx, `${hostWithPages.origin}/signed.html`);
      assert.equal(await grace.locator('input.image-chat-name').count(), 0);
      assert.deepEqual(await commentsOf(grace, 'Hello from the lake'), [
        { author: 'Ada (you) moderator', badges: [], text: 'Hello from the lake' },
      ]);
      // The signed user gets no name field in the first-post form either.
      const box = await grace.locator('#photo').boundingBox();
      await grace.keyboard.press('Escape');
      await grace.mouse.click(box.x + 0.8 * box.width, box.y + 0.7 * box.height);
      await grace.locator('.image-chat-thread[data-draft] textarea').fill('Signed and moderating');
      assert.equal(await grace.locator('input.image-chat-name').count(), 0);
      await grace.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      assert.deepEqual(await commentsOf(grace, 'Signed and moderating'), [
        { author: 'Grace', badges: ['you', 'signed-in', 'moderator'], text: 'Signed and moderating' },
      ]);
      // Ada sees Grace's badges, which her typed name could not earn.
      assert.deepEqual(await commentsOf(ada, 'Signed and moderating'), [
        { author: 'Grace', badges: ['signed-in', 'moderator'], text: 'Signed and moderating' },
      ]);

      // Remembered on the site: after a reload the form is prefilled and the hello carries it.
      await ada.reload();
      await waitFor(ada, () => document.querySelector('.image-chat')?.dataset.state === 'live');
      const photo = await ada.locator('#photo').boundingBox();
      await ada.mouse.click(photo.x + 0.5 * photo.width, photo.y + 0.9 * photo.height);
      assert.equal(await ada.locator('.image-chat-thread[data-draft] input.image-chat-name').inputValue(), 'Ada (you) moderator');
      await anonCtx.close();
      await signedCtx.close();
    }
  });
});

test('a dense image clusters overlapping markers, expandable from the keyboard, and the bar hides them', async () => {
  await withSite(async (server, host, pages) => {
    const imageId = `dense-${newId()}`;
    pages['/index.html'] = hostPage(server, 'demo', imageId);
    const api = await ApiClient.join(server.url, imageId, 'Busy');
    try {
      // Six discussions within a few pixels of each other, one far away.
      for (let i = 0; i < 6; i++) {
        await api.createChat(0.5 + 0.004 * i, 0.5 + 0.003 * i, `crowded ${i}`);
      }
      await api.createChat(0.1, 0.1, 'alone');
      const context = await browser.newContext();
      const page = await open(context, host.url);
      await waitFor(page, () => document.querySelector('.image-chat-cluster')?.dataset.count === '6');
      const cluster = page.locator('.image-chat-cluster');
      assert.equal(await cluster.getAttribute('aria-label'), '6 discussions');
      assert.equal(await page.locator('.image-chat-layer > .image-chat-marker[data-clustered]').count(), 6);
      // Keyboard: focus it, Enter expands it and puts the focus on its first member.
      await cluster.focus();
      await page.keyboard.press('Enter');
      await waitFor(page, () => document.querySelector('.image-chat-cluster').getAttribute('aria-expanded') === 'true');
      assert.equal(await page.evaluate(() => document.activeElement.matches('.image-chat-marker[data-fanned]')), true);
      // Every fanned marker can be clicked: the point at its centre is the marker itself.
      const hits = await page.evaluate(() =>
        [...document.querySelectorAll('.image-chat-marker[data-fanned]')].map((m) => {
          const r = m.getBoundingClientRect();
          return document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2) === m;
        }),
      );
      assert.deepEqual(hits, [true, true, true, true, true, true]);
      // Escape folds it back, focus on the cluster; Space expands it again.
      await page.keyboard.press('Escape');
      await waitFor(page, () => document.querySelector('.image-chat-cluster').getAttribute('aria-expanded') === 'false');
      assert.equal(await page.evaluate(() => document.activeElement.classList.contains('image-chat-cluster')), true);
      await page.keyboard.press(' ');
      await waitFor(page, () => document.querySelector('.image-chat-cluster').getAttribute('aria-expanded') === 'true');
      await page.keyboard.press('Escape');

      // The bar's toggle, by keyboard: hidden, announced, and back.
      const toggle = page.locator('.image-chat-bar .image-chat-toggle');
      await toggle.focus();
      await page.keyboard.press(' ');
      await waitFor(page, () => document.querySelector('.image-chat').hasAttribute('data-markers-hidden'));
      assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
      assert.equal(await page.locator('.image-chat-sr').textContent(), 'Markers hidden');
      assert.equal(await page.locator('.image-chat-marker[data-chat-id]').first().isVisible(), false);
      await page.keyboard.press('Enter');
      await waitFor(page, () => !document.querySelector('.image-chat').hasAttribute('data-markers-hidden'));
      assert.equal(await page.locator('.image-chat-sr').textContent(), 'Markers shown');
      await context.close();
    } finally {
      api.close();
    }
  });
});

test('on a phone, a crowded corner fans out inside the picture, each member its own tap target, and stays open as people add to it; touch areas that overlap group, and regroup when the pointer changes', async () => {
  await withSite(async (server, host, pages) => {
    const imageId = `phone-dense-${newId()}`;
    pages['/index.html'] = hostPage(server, 'demo', imageId, { responsive: true });
    const api = await ApiClient.join(server.url, imageId, 'Busy');
    try {
      // Eight discussions piled up in the bottom-right corner.
      for (let i = 0; i < 8; i++) {
        await api.createChat(0.97 - 0.002 * i, 0.95 - 0.002 * i, `corner ${i}`);
      }
      const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
      const page = await open(context, host.url);
      await waitFor(page, () => document.querySelector('.image-chat-cluster')?.dataset.count === '8');
      // The cluster button (32 px) takes taps over a 44 px touch area, as markers do.
      const reach = await page.evaluate(() => {
        const b = document.querySelector('.image-chat-cluster');
        const r = b.getBoundingClientRect();
        const [cx, cy] = [r.left + r.width / 2, r.top + r.height / 2];
        return [[-20, 0], [0, -20], [-14, -14]].map(([dx, dy]) => document.elementFromPoint(cx + dx, cy + dy) === b);
      });
      assert.deepEqual(reach, [true, true, true], 'taps 20 px from the button centre reach it');
      await page.locator('.image-chat-cluster').tap();
      await waitFor(page, () => document.querySelector('.image-chat-cluster').getAttribute('aria-expanded') === 'true');

      /**
       * The fanned members as laid out: each inside the picture, and every point of its
       * visible disc (the centre, and 2 px inside its edge towards each side) its own, not
       * a neighbour's enlarged touch area.
       */
      const fanned = () =>
        page.evaluate(() => {
          const pic = document.getElementById('photo').getBoundingClientRect();
          return [...document.querySelectorAll('.image-chat-marker[data-fanned]')].map((m) => {
            const r = m.getBoundingClientRect();
            const [cx, cy, edge] = [r.left + r.width / 2, r.top + r.height / 2, r.width / 2 - 2];
            const probes = [[0, 0], [edge, 0], [-edge, 0], [0, edge], [0, -edge]];
            return {
              id: m.dataset.chatId,
              inside: r.left >= pic.left && r.top >= pic.top && r.right <= pic.right && r.bottom <= pic.bottom,
              own: probes.every(([dx, dy]) => {
                const hit = document.elementFromPoint(cx + dx, cy + dy);
                return hit === m || m.contains(hit);
              }),
            };
          });
        });
      let members = await fanned();
      assert.equal(members.length, 8);
      for (const m of members) {
        assert.ok(m.inside, `${m.id} is inside the picture`);
        assert.ok(m.own, `${m.id} is its own tap target`);
      }

      // Someone adds a ninth while it is open: the same cluster counts it and stays open,
      // re-fanned, still inside and apart.
      await api.createChat(0.96, 0.94, 'corner 8');
      await waitFor(page, () => document.querySelectorAll('.image-chat-marker[data-fanned]').length === 9);
      assert.equal(await page.locator('.image-chat-cluster').getAttribute('data-count'), '9');
      members = await fanned();
      for (const m of members) {
        assert.ok(m.inside, `${m.id} is inside the picture after the update`);
        assert.ok(m.own, `${m.id} is its own tap target after the update`);
      }

      // Tapping one opens its discussion.
      await page.locator(`.image-chat-marker[data-chat-id="${members[4].id}"]`).tap();
      await waitFor(page, (id) => document.querySelector(`.image-chat-thread[data-chat-id="${id}"]`) !== null, members[4].id);

      // Two discussions 36 px apart on this screen: their discs do not overlap, their touch
      // areas do. On the touch screen they are one group; with a mouse on a screen of the
      // same size, two markers.
      await api.createChat(0.2, 0.3, 'left of the pair');
      await api.createChat(0.2 + 36 / 390, 0.3, 'right of the pair');
      await waitFor(page, () => document.querySelectorAll('.image-chat-cluster').length === 2);
      assert.equal(await page.locator('.image-chat-cluster').nth(1).getAttribute('data-count'), '2');
      const mouse = await browser.newContext({ viewport: { width: 390, height: 844 } });
      const desk = await open(mouse, host.url);
      await waitFor(desk, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 11);
      assert.equal(await desk.locator('.image-chat-cluster').count(), 1, 'only the corner is a group');
      assert.equal(await desk.locator('.image-chat-cluster').getAttribute('data-count'), '9');
      // The same page turned into a touch screen (a laptop folded into a tablet) regroups at
      // once, with no other event; and back.
      const cdp = await mouse.newCDPSession(desk);
      await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 });
      await waitFor(desk, () => document.querySelectorAll('.image-chat-cluster').length === 2);
      assert.equal(await desk.locator('.image-chat-cluster').nth(1).getAttribute('data-count'), '2');
      await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: false });
      await waitFor(desk, () => document.querySelectorAll('.image-chat-cluster').length === 1);
      await mouse.close();
      await context.close();
    } finally {
      api.close();
    }
  });
});
