// Helpers for the overlay end-to-end tests (frameworks.test.mjs, layout.test.mjs): console
// error collection, a second viewer's live count, and where a marker is compared with where it
// should be.

import assert from 'node:assert/strict';
import { ApiClient } from './api.mjs';
import { WAIT_MS } from './harness.mjs';

/** Collects console errors and uncaught page errors of `page` (asserted empty by the tests). */
export function collectErrors(page) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Another viewer of `imageId` (a protocol client) that keeps the latest live count. */
export async function viewer(server, imageId) {
  const client = await ApiClient.join(server.url, imageId, 'Second viewer');
  client.online = client.welcome.online;
  client.ws.addEventListener('message', (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'presence') client.online = m.online;
  });
  client.waitOnline = async (n) => {
    const until = Date.now() + WAIT_MS;
    while (client.online !== n) {
      if (Date.now() > until) throw new Error(`live count stayed ${client.online}, expected ${n}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return client;
}

/**
 * Waits until the marker of `chatId` is centred, within `tolerance` px, on the point at
 * fractions (fx, fy) of the image `imgSelector`'s box (the image is drawn with object-fit:
 * fill), and visible on top there. Returns the distance.
 */
export async function waitAligned(page, imgSelector, chatId, fx, fy, tolerance = 2) {
  let last;
  const until = Date.now() + WAIT_MS;
  for (;;) {
    last = await page.evaluate(([sel, id, x, y]) => {
      const img = document.querySelector(sel);
      const m = document.querySelector(`.image-chat-marker[data-chat-id="${id}"]`);
      if (!img || !m) return { missing: !img ? 'image' : 'marker' };
      const r = img.getBoundingClientRect();
      const b = m.getBoundingClientRect();
      const want = { x: r.left + x * r.width, y: r.top + y * r.height };
      const got = { x: b.left + b.width / 2, y: b.top + b.height / 2 };
      const hit = document.elementFromPoint(got.x, got.y);
      return { d: Math.hypot(got.x - want.x, got.y - want.y), onTop: !!hit && (hit === m || m.contains(hit)) };
    }, [imgSelector, chatId, fx, fy]);
    if (last.d !== undefined && last.d <= tolerance && last.onTop) return last.d;
    if (Date.now() > until) assert.fail(`marker not aligned: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until no overlay is shown (every `.image-chat` hidden or gone). */
export function waitNoOverlay(page) {
  return page.waitForFunction(
    () => [...document.querySelectorAll('.image-chat')].every((e) => e.hidden),
    null,
    { timeout: WAIT_MS, polling: 50 },
  );
}

/**
 * Where the red dot of the test photo is on screen (viewport px), found in a screenshot of
 * `clip` taken with the overlays hidden: the browser's own rendering (object-fit, transforms,
 * srcset) is the oracle, not the widget's arithmetic.
 */
export async function redDot(page, clip) {
  await page.evaluate(() => {
    const s = document.createElement('style');
    s.id = 'hide-overlays';
    s.textContent = '.image-chat-overlays{visibility:hidden!important}';
    document.head.append(s);
  });
  const png = await page.screenshot({ clip });
  await page.evaluate(() => document.getElementById('hide-overlays').remove());
  return page.evaluate(async ([b64, c]) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, img.width, img.height).data;
    let sx = 0;
    let sy = 0;
    let n = 0;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const i = (y * img.width + x) * 4;
        if (d[i] > 200 && d[i + 1] < 80 && d[i + 2] < 80) {
          sx += x;
          sy += y;
          n++;
        }
      }
    }
    return n ? { x: c.x + sx / n + 0.5, y: c.y + sy / n + 0.5, n } : null;
  }, [png.toString('base64'), clip]);
}

/** The centre of the only marker with a chat id (viewport px), once there is one. */
export async function markerCentre(page) {
  const m = page.locator('.image-chat-marker[data-chat-id]');
  await m.waitFor({ timeout: WAIT_MS });
  const b = await m.boundingBox();
  return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
}
