// End-to-end layout: markers on the drawn picture under CSS that sites use (object-fit cover /
// contain with percentage and fixed sizes, object-position, scaled and translated ancestors,
// a responsive srcset image), and the thread panel always fully on screen (phone bottom sheet,
// a banner near the top of a desktop page, a thumbnail), with touch-sized targets. Host pages
// are served from another origin than the server and embed the widget with the one-tag loader.
//
// The oracle for "on the spot" is the browser's own rendering: the test photo has a red dot,
// found in a screenshot taken with the overlays hidden (overlay.mjs redDot), so object-fit,
// transforms and srcset are checked against what the browser draws, within 2 px.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, startHostServer, launchBrowser, ROOT, WAIT_MS } from './harness.mjs';
import { collectErrors, markerCentre, redDot, viewer } from './overlay.mjs';

const PHOTOS = join(ROOT, 'e2e', 'frameworks', 'public');
const SHOTS = join(ROOT, 'docs', 'screenshots');

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

function page(serverUrl, imageId, css, body) {
  return {
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{margin:16px;font:15px system-ui} ${css}</style></head><body>
<h1 style="margin:0 0 12px;font-size:20px">Case ${imageId}</h1>
${body.replace('<img ', `<img data-image-chat="${imageId}" alt="A valley" `)}
<script src="${serverUrl}/embed.js" data-tenant="demo" defer></script></body></html>`,
  };
}

const CASES = {
  'cover-percent': ['.box{width:70%;height:300px} .box img{width:100%;height:100%;object-fit:cover}', '<div class="box"><img src="/photo.svg"></div>'],
  'contain-percent': ['.box{width:60%;height:60vh} .box img{width:100%;height:100%;object-fit:contain;background:#ddd}', '<div class="box"><img src="/photo.svg"></div>'],
  'cover-fixed': ['img{width:320px;height:320px;object-fit:cover}', '<img src="/photo.svg">'],
  'contain-fixed': ['img{width:500px;height:440px;object-fit:contain;background:#ddd;padding:6px;border:3px solid #444}', '<img src="/photo.svg">'],
  'object-position': ['img{width:300px;height:300px;object-fit:cover;object-position:75% 20%}', '<img src="/photo.svg">'],
  'object-position-edges': ['img{width:300px;height:300px;object-fit:cover;object-position:right 30px top 10px}', '<img src="/photo.svg">'],
  'object-fit-none': ['.box{width:50%} .box img{width:100%;height:300px;object-fit:none;object-position:40% 60%}', '<div class="box"><img src="/photo.svg"></div>'],
  'scaled-ancestor': ['.zoom{transform:scale(.5);transform-origin:0 0} img{width:760px}', '<div class="zoom"><p>Scaled to half</p><img src="/photo.svg"></div>'],
  'translated-ancestor': ['.shift{transform:translate(37px,21px)} img{width:55%}', '<div class="shift"><img src="/photo.svg"></div>'],
  srcset: ['img{max-width:100%;height:auto}', '<img src="/photo.svg" srcset="/photo-small.svg 400w, /photo.svg 800w" sizes="(max-width: 800px) 90vw, 600px">'],
  'box-400': ['.box{height:400px} .box img{width:100%;height:100%;object-fit:cover}', '<div class="box"><img src="/photo.svg"></div>'],
};

async function imageBox(p) {
  const img = p.locator('img[data-image-chat]');
  await p.locator('.image-chat[data-state=live]').waitFor({ timeout: WAIT_MS });
  return img.boundingBox();
}

test('a marker on a spot of the picture is on that spot for another viewer at another size (object-fit, object-position, transforms, srcset)', async () => {
  const server = await startServer();
  const pages = {};
  for (const [id, [css, body]] of Object.entries(CASES)) pages[`/${id}.html`] = page(server.url, id, css, body);
  const host = await startHostServer({ root: PHOTOS, pages });
  const wide = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const narrow = await browser.newContext({ viewport: { width: 720, height: 700 } });
  try {
    for (const id of Object.keys(CASES)) {
      const a = await wide.newPage();
      const errorsA = collectErrors(a);
      await a.goto(`${host.url}${id}.html`);
      const boxA = await imageBox(a);
      if (id === 'box-400') {
        // The image keeps its size: nothing wraps it, so height:100% still resolves.
        const want = await a.evaluate(() => document.querySelector('.box').getBoundingClientRect().width);
        assert.equal(boxA.height, 400, id);
        assert.equal(boxA.width, want, id);
      }
      const dotA = await redDot(a, boxA);
      assert.ok(dotA, `${id}: red dot visible for viewer A`);
      await a.mouse.click(dotA.x, dotA.y);
      await a.locator('.image-chat-thread[data-draft] textarea').fill(`Dot on ${id}`);
      await a.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      await a.locator('.image-chat-marker[data-chat-id]:not([data-pending])').waitFor({ timeout: WAIT_MS });
      await a.keyboard.press('Escape');
      const mA = await markerCentre(a);
      assert.ok(Math.hypot(mA.x - dotA.x, mA.y - dotA.y) <= 2, `${id}: own marker ${JSON.stringify(mA)} vs dot ${JSON.stringify(dotA)}`);

      const b = await narrow.newPage();
      const errorsB = collectErrors(b);
      await b.goto(`${host.url}${id}.html`);
      const boxB = await imageBox(b);
      const mB = await markerCentre(b);
      const dotB = await redDot(b, boxB);
      assert.ok(dotB, `${id}: red dot visible for viewer B`);
      assert.ok(Math.hypot(mB.x - dotB.x, mB.y - dotB.y) <= 2, `${id}: other viewer's marker ${JSON.stringify(mB)} vs dot ${JSON.stringify(dotB)} (image ${JSON.stringify(boxB)})`);
      assert.deepEqual([...errorsA, ...errorsB], [], id);
      await a.close();
      await b.close();
    }
  } finally {
    await wide.close();
    await narrow.close();
    await host.close();
    await server.kill();
    server.cleanup();
  }
});

const LONG = 'A long comment about this part of the picture, written to make the thread taller than the screen can show at once. ';

/** Opens the thread of the only marker and checks the panel is entirely on screen, its head
 *  and close button reachable and its comment list scrollable to the last comment. */
async function checkPanel(p, viewport, label, { tap = false } = {}) {
  const marker = p.locator('.image-chat-marker[data-chat-id]');
  await marker.waitFor({ timeout: WAIT_MS });
  if (tap) await marker.tap();
  else await marker.click();
  const panel = p.locator('.image-chat-thread[data-chat-id]');
  await panel.waitFor({ timeout: WAIT_MS });
  await p.waitForFunction(() => document.querySelectorAll('.image-chat-thread .image-chat-comment').length >= 6, null, { timeout: WAIT_MS });
  // Placed once laid out (its data-place says where).
  await p.waitForFunction(() => !!document.querySelector('.image-chat-thread[data-chat-id]')?.dataset.place, null, { timeout: WAIT_MS, polling: 50 });
  const r = await panel.boundingBox();
  assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.width <= viewport.width + 0.5 && r.y + r.height <= viewport.height + 0.5,
    `${label}: panel ${JSON.stringify(r)} inside ${JSON.stringify(viewport)}`);
  const reachable = await p.evaluate(() => {
    const close = document.querySelector('.image-chat-thread .image-chat-close');
    const c = close.getBoundingClientRect();
    const list = document.querySelector('.image-chat-thread .image-chat-comments');
    list.scrollTop = list.scrollHeight;
    const last = [...list.children].at(-1).getBoundingClientRect();
    const l = list.getBoundingClientRect();
    return {
      close: document.elementFromPoint(c.left + c.width / 2, c.top + c.height / 2) === close,
      scrolls: list.scrollHeight > list.clientHeight,
      lastShown: last.bottom <= l.bottom + 1,
      place: document.querySelector('.image-chat-thread').dataset.place,
    };
  });
  assert.ok(reachable.close, `${label}: close button reachable`);
  assert.ok(reachable.lastShown, `${label}: last comment reachable by scrolling`);
  return { ...reachable, rect: r };
}

async function longThread(server, imageId, x, y) {
  const api = await viewer(server, imageId);
  const { chatId } = await api.createChat(x, y, LONG);
  for (let i = 1; i < 6; i++) await api.reply(chatId, `${i}. ${LONG.repeat(2)}`);
  return api;
}

test('the thread panel is always fully reachable: phone bottom sheet, banner near the top, thumbnail; touch targets', async () => {
  const server = await startServer();
  const pages = {
    '/phone.html': page(server.url, 'phone', 'img{display:block;width:358px;height:224px;object-fit:cover}', '<p>Intro text.</p><img src="/photo.svg">'),
    '/banner.html': page(server.url, 'banner', 'body{margin:0} h1{display:none} img{display:block;width:1000px;height:250px;margin:24px auto 0}', '<img src="/photo.svg"><p style="height:1200px">Article…</p>'),
    '/thumb.html': page(server.url, 'thumb', 'img{width:160px;height:100px;object-fit:cover}', '<img src="/photo.svg">'),
  };
  const host = await startHostServer({ root: PHOTOS, pages });
  const apis = [];
  try {
    apis.push(await longThread(server, 'phone', 0.9, 0.85));
    apis.push(await longThread(server, 'banner', 0.9, 0.85));
    apis.push(await longThread(server, 'thumb', 0.5, 0.5));

    // Phone: a bottom sheet with its head on screen; touch-sized targets, 16 px text boxes.
    const phoneView = { width: 390, height: 844 };
    const phone = await browser.newContext({ viewport: phoneView, hasTouch: true, isMobile: true, deviceScaleFactor: 1 });
    const p = await phone.newPage();
    const errors = collectErrors(p);
    await p.goto(`${host.url}phone.html`);
    const box = await imageBox(p);
    assert.equal(box.width, 358);
    const touch = await p.evaluate(() => {
      const m = document.querySelector('.image-chat-marker[data-chat-id]');
      const b = m.getBoundingClientRect();
      const cx = b.left + b.width / 2;
      const cy = b.top + b.height / 2;
      const at = (dx, dy) => document.elementFromPoint(cx + dx, cy + dy) === m;
      return { coarse: matchMedia('(pointer: coarse)').matches, visible: b.width, hit: at(-21, 0) && at(21, 0) && at(0, -21) && at(0, 21) };
    });
    assert.ok(touch.coarse, 'touch context has a coarse pointer');
    assert.ok(touch.visible < 44 && touch.hit, `marker dot ${touch.visible}px with a 44px hit area`);
    const sheet = await checkPanel(p, phoneView, 'phone', { tap: true });
    assert.equal(sheet.place, 'sheet');
    assert.ok(sheet.scrolls, 'a long thread scrolls inside the sheet');
    const controls = await p.evaluate(() => ({
      buttons: [...document.querySelectorAll('.image-chat-thread button')].map((b) => b.getBoundingClientRect()).filter((r) => r.width > 0).map((r) => Math.min(r.width, r.height)),
      font: getComputedStyle(document.querySelector('.image-chat-thread textarea')).fontSize,
    }));
    assert.ok(controls.buttons.length > 0 && controls.buttons.every((s) => s >= 44), `buttons ${controls.buttons}`);
    assert.equal(controls.font, '16px');
    await p.screenshot({ path: join(SHOTS, 'phone-thread.png') });
    assert.deepEqual(errors, []);
    await phone.close();

    // A 1000×250 banner near the top of a desktop page, marker low on the right.
    const desk = { width: 1280, height: 800 };
    const d = await browser.newContext({ viewport: desk });
    const b = await d.newPage();
    await b.goto(`${host.url}banner.html`);
    await imageBox(b);
    const banner = await checkPanel(b, desk, 'banner');
    assert.notEqual(banner.place, 'sheet');
    // A thumbnail: the panel leaves the picture but stays on screen.
    const t = await d.newPage();
    await t.goto(`${host.url}thumb.html`);
    await imageBox(t);
    await checkPanel(t, desk, 'thumbnail');
    await d.close();
  } finally {
    for (const a of apis) a.close();
    await host.close();
    await server.kill();
    server.cleanup();
  }
});

test('a focused marker shows a ring that is visible on a dark photo', async () => {
  const server = await startServer();
  const pages = { '/dark.html': page(server.url, 'dark', 'img{display:block;width:600px}', '<img src="/photo.svg">') };
  const host = await startHostServer({ root: PHOTOS, pages });
  const api = await viewer(server, 'dark');
  const context = await browser.newContext({ viewport: { width: 900, height: 700 }, colorScheme: 'light' });
  try {
    await api.createChat(0.25, 0.3, 'In the dark sky');
    const p = await context.newPage();
    await p.goto(`${host.url}dark.html`);
    await imageBox(p);
    await p.locator('.image-chat-marker[data-chat-id]').waitFor({ timeout: WAIT_MS });
    await p.keyboard.press('Tab'); // the overlay
    await p.keyboard.press('Tab'); // its marker
    assert.ok(await p.evaluate(() => document.activeElement.matches('.image-chat-marker:focus-visible')));
    const b = await p.locator('.image-chat-marker[data-chat-id]').boundingBox();
    const clip = { x: b.x - 12, y: b.y - 12, width: b.width + 24, height: b.height + 24 };
    const png = await p.screenshot({ clip });
    // Around the marker, just outside its own border: a light ring and a dark one, whatever the
    // photo's colour there (72 samples on each circle; at least half must be light / dark).
    const rings = await p.evaluate(async ([b64, r]) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = img.width;
      c.height = img.height;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, img.width, img.height).data;
      const cx = img.width / 2;
      const cy = img.height / 2;
      const ring = (radius) => {
        let light = 0;
        let dark = 0;
        for (let a = 0; a < 360; a += 5) {
          const t = (a * Math.PI) / 180;
          const x = Math.round(cx + Math.cos(t) * radius);
          const y = Math.round(cy + Math.sin(t) * radius);
          const i = (y * img.width + x) * 4;
          if (d[i] > 220 && d[i + 1] > 220 && d[i + 2] > 220) light++;
          if (d[i] < 40 && d[i + 1] < 40 && d[i + 2] < 40) dark++;
        }
        return { light, dark };
      };
      return { light: ring(r + 3), dark: ring(r + 5.5) };
    }, [png.toString('base64'), b.width / 2]);
    assert.ok(rings.light.light >= 36, `light ring ${JSON.stringify(rings)}`);
    assert.ok(rings.dark.dark >= 36, `dark ring ${JSON.stringify(rings)}`);
  } finally {
    api.close();
    await context.close();
    await host.close();
    await server.kill();
    server.cleanup();
  }
});
