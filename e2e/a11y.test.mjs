// End-to-end accessibility check: axe-core (npm) runs inside Chromium on the demo page (served
// from another origin than the server, as sites embed the widget) in the light and the dark
// theme, in three states each: live with discussions on the picture, a thread open, and offline
// after a failed attempt (its message and Retry shown). Any violation axe rates "serious" or
// "critical" fails the test, with the rule, its help and the offending elements.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startDemoSite, launchBrowser, WAIT_MS, waitFor } from './harness.mjs';
import { ApiClient } from './api.mjs';
import { axeReport } from './axe.mjs';

const IMAGE_ID = 'demo-lakeside'; // www/index.html's picture

let browser;
let server;
let site;
let sun;
before(async () => {
  browser = await launchBrowser();
  server = await startServer();
  site = await startDemoSite(server);
  const api = await ApiClient.join(server.url, IMAGE_ID, 'Ada');
  try {
    sun = await api.createChat(0.62, 0.3, 'Is the sun setting or rising here?');
    await api.reply(sun.chatId, 'Setting: the shadows point east.');
    await api.createChat(0.3, 0.72, 'Lovely reflection on the water.');
  } finally {
    api.close();
  }
});
after(async () => {
  await browser?.close();
  await server?.kill();
  server?.cleanup();
  await site?.close();
});

for (const theme of ['light', 'dark']) {
  test(`axe: no serious or critical violation on the demo page, ${theme} theme: live, thread open, offline`, async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, colorScheme: theme });
    try {
      const page = await context.newPage();
      await page.goto(`${site.url}?theme=${theme}`);
      await waitFor(page, () => document.querySelectorAll('.image-chat-marker[data-chat-id]').length === 2);
      await waitFor(page, () => document.querySelector('.image-chat')?.dataset.state === 'live');
      const found = {};
      found.live = await axeReport(page);

      await page.locator(`.image-chat-marker[data-chat-id="${sun.chatId}"]`).click();
      await page.locator(`.image-chat-thread[data-chat-id="${sun.chatId}"]`).waitFor({ timeout: WAIT_MS });
      found['thread open'] = await axeReport(page);
      await page.keyboard.press('Escape');
      await page.locator('.image-chat-thread').waitFor({ state: 'detached', timeout: WAIT_MS });

      await context.setOffline(true);
      await waitFor(page, () => document.querySelector('.image-chat')?.dataset.state === 'offline');
      const box = await page.locator('#demo-image').boundingBox();
      await page.mouse.click(box.x + 0.5 * box.width, box.y + 0.5 * box.height);
      await page.locator('.image-chat-thread[data-draft] textarea').fill('typed offline');
      await page.locator('.image-chat-thread[data-draft] [data-action=post]').click();
      await page.locator('.image-chat-marker[data-failed]').waitFor({ timeout: WAIT_MS });
      found.offline = await axeReport(page);

      const report = Object.entries(found)
        .filter(([, v]) => v !== '')
        .map(([state, v]) => `--- ${state}:\n${v}`)
        .join('\n');
      assert.equal(report, '', `axe found serious or critical violations (${theme}):\n${report}`);
    } finally {
      await context.close();
    }
  });
}
