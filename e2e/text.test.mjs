// End-to-end: text mode (discussions on passages of an article), the way sites embed it: the
// article page is served from its own origin (startHostServer), the loader and the text bundle
// come cross-origin from the real server. Two people and a second tab select, discuss, reply,
// edit and delete, live everywhere, with the counts right; hostile text (in comments and in the
// selected passage) stays text; a paragraph inserted before a discussed passage (re-anchored)
// and the passage deleted (listed as on text that changed, its thread intact); the server
// killed and restarted, and the browser offline; keyboard-only selection and discussion; a
// moderator on a phone in French (a touch selection's prompt below the handles, the thread as
// a sheet on the narrow screen, another person's discussion deleted, the language switched in
// place). The
// README's screenshots of text mode are taken here. Every wait is on a DOM condition with a
// bound.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startServer, startHostServer, launchBrowser, waitFor } from './harness.mjs';
import { signSso } from './api.mjs';

const SHOTS = join(ROOT, 'docs', 'screenshots');
const HOSTILE_QUOTE = '<img src=x onerror="window.__pwned=1">';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** The host page: an article marked for text mode, the documented script tag. */
function articlePage(server, { theme = 'light', locale = 'en', auth, pageId } = {}) {
  const authAttr = (auth ? ` data-auth='${JSON.stringify(auth)}'` : '') + (pageId ? ` data-page-id="${pageId}"` : '');
  return {
    body: `<!doctype html><html lang="${locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>article</title>
<style>body{margin:0;padding:16px 24px;font:17px/1.6 Georgia,serif} article{max-width:640px}</style></head>
<body>
<article id="story" data-collab-chat="chapter-1" data-theme="${theme}"${authAttr}>
  <h2>The lake at dusk</h2>
  <p id="p1">The boat left the pier a little after seven, when the water turned the colour of old brass.</p>
  <p id="p2">Marta kept the tiller; she could tell by the ripples which way the evening breeze would come from.</p>
  <p id="p3">By the time they reached the island the sun sat on the western ridge like a coin on its edge.</p>
  <p id="p4">A sign on the landing read: ${HOSTILE_QUOTE.replace(/</g, '&lt;').replace(/>/g, '&gt;')} in chalk.</p>
</article>
<script src="${server.url}/embed.js" data-tenant="site" data-locale="${locale}" defer></script>
</body></html>`,
  };
}

/** A server whose tenant allows the host site's origin and anonymous people, and that site. */
async function withSite(body, { dbDir, secret } = {}) {
  const pages = {};
  const host = await startHostServer({ pages });
  const dir = mkdtempSync(join(tmpdir(), 'image-chat-text-'));
  const tenants = join(dir, 'tenants.toml');
  const signed = secret ? `secret = "${secret}"\n` : '';
  writeFileSync(tenants, `[[tenant]]\nid = "site"\n${signed}origins = ["${host.origin}"]\nanonymous = "allow"\n`);
  const ctx = { server: null, tenants };
  ctx.server = await startServer({ dbDir, args: ['--tenants', tenants] });
  pages['/index.html'] = articlePage(ctx.server);
  try {
    await body(ctx, host, pages);
  } finally {
    await ctx.server.kill();
    ctx.server.cleanup();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function open(context, url) {
  const page = await context.newPage();
  page.on('pageerror', (err) => {
    throw new Error(`page error: ${err.message}`);
  });
  page.on('dialog', () => {
    throw new Error('a dialog opened: hostile text ran');
  });
  await page.goto(url);
  await waitFor(page, () => document.querySelector('.image-chat-topbar')?.dataset.state === 'live');
  return page;
}

/** The viewport rectangle of `text` inside element `#id` (its first occurrence). */
function rectOf(page, id, text) {
  return page.evaluate(
    ([id, text]) => {
      const el = document.getElementById(id);
      const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const at = n.data.indexOf(text);
        if (at >= 0) {
          const r = document.createRange();
          r.setStart(n, at);
          r.setEnd(n, at + text.length);
          const b = r.getBoundingClientRect();
          return { left: b.left, top: b.top, right: b.right, bottom: b.bottom };
        }
      }
      throw new Error(`${text} not in #${id}`);
    },
    [id, text],
  );
}

/** Selects `text` in `#id` with the mouse (a drag across it), as a reader does. */
async function selectByMouse(page, id, text) {
  const r = await rectOf(page, id, text);
  const y = (r.top + r.bottom) / 2;
  await page.mouse.move(r.left + 1, y);
  await page.mouse.down();
  await page.mouse.move((r.left + r.right) / 2, y, { steps: 4 });
  await page.mouse.move(r.right - 1, y, { steps: 4 });
  await page.mouse.up();
  await waitFor(page, () => !document.querySelector('.image-chat-prompt').hidden);
  const selected = await page.evaluate(() => document.getSelection().toString());
  assert.equal(selected.trim(), text.trim());
}

/** Selects `text` in `#id` and posts a discussion about it with `comment`. */
async function discuss(page, id, text, comment) {
  await selectByMouse(page, id, text);
  await page.locator('.image-chat-prompt [data-text-action=discuss]').click();
  const draft = page.locator('.image-chat-thread[data-draft]');
  await draft.locator('textarea').fill(comment);
  await draft.locator('[data-action=post]').click();
  await waitFor(page, () => document.querySelector('.image-chat-thread[data-chat-id]:not([data-draft])'));
}

/** The texts of the discussions' highlighted passages, sorted. */
function highlighted(page, name = 'image-chat') {
  return page.evaluate(
    (name) => [...(CSS.highlights.get(name) ?? [])].map((r) => r.toString()).sort(),
    name,
  );
}

/** Waits until the top bar counts `n` discussions (the hint when none). */
async function waitCount(page, n) {
  await waitFor(page, (n) => document.querySelector('.image-chat-count')?.dataset.count === String(n), n);
}

/** Opens the thread of the discussion on `text` by clicking its highlight. */
async function openByClick(page, id, text) {
  const r = await rectOf(page, id, text);
  await page.mouse.click((r.left + r.right) / 2, (r.top + r.bottom) / 2);
  await waitFor(page, () => document.querySelector('.image-chat-thread[data-chat-id]'));
}

test('two people and a second tab: select, discuss, reply, edit, delete live; counts; hostile text', async () => {
  await withSite(async ({ server }, host) => {
    const ada = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    const bob = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    try {
      const a1 = await open(ada, host.url);
      const a2 = await open(ada, host.url);
      const b = await open(bob, host.url);
      // Two people (a browser context is one person; Ada's second tab is not a third).
      for (const p of [a1, a2, b]) {
        await waitFor(p, () => document.querySelector('.image-chat-online')?.dataset.count === '2');
        assert.equal(
          await p.locator('.image-chat-count').textContent(),
          'Select some text to start a discussion.',
        );
      }
      // The page's own DOM is untouched: the only new child of the article is the top bar.
      assert.equal(await a1.evaluate(() => document.getElementById('story').children[0].className), 'image-chat-topbar');

      await selectByMouse(a1, 'p1', 'old brass');
      await a1.screenshot({ path: join(SHOTS, 'text-prompt.png') });
      await a1.locator('.image-chat-prompt [data-text-action=discuss]').click();
      const hostileComment = '<script>window.__pwned=1</script><b>bold?</b> brass & "quotes"';
      const draft = a1.locator('.image-chat-thread[data-draft]');
      await draft.locator('textarea').fill(hostileComment);
      await draft.locator('[data-action=post]').click();

      for (const p of [a1, a2, b]) {
        await waitCount(p, 1);
        await waitFor(p, () => CSS.highlights.has('image-chat') || CSS.highlights.has('image-chat-open'));
      }
      assert.deepEqual(await highlighted(b), ['old brass']);
      assert.equal(await b.locator('.image-chat-count').textContent(), '1 discussion');

      // Bob opens it from its highlight and replies; both of Ada's tabs see the reply.
      await openByClick(b, 'p1', 'old brass');
      const thread = b.locator('.image-chat-thread[data-chat-id]');
      assert.equal(await thread.locator('.image-chat-text').first().textContent(), hostileComment);
      assert.equal(await thread.locator('.image-chat-text b').count(), 0);
      await thread.locator('textarea').fill('Brass is right: it was that colour.');
      await thread.locator('[data-action=reply]').click();
      await a2.locator('.image-chat-topbar summary').click();
      await a2.locator('.image-chat-list button[data-chat-id]').first().click();
      await waitFor(a2, () => document.querySelectorAll('.image-chat-thread[data-chat-id] .image-chat-comment').length === 2);
      await waitFor(a1, () => document.querySelectorAll('.image-chat-thread[data-chat-id] .image-chat-comment').length === 2);

      // Ada edits her first comment in tab 1; Bob and tab 2 see the edit.
      const mine = a1.locator('.image-chat-thread[data-chat-id] .image-chat-comment').first();
      await mine.locator('[data-action=edit]').click();
      await a1.locator('textarea.image-chat-edit').fill('Old brass, or bronze?');
      await a1.locator('[data-action=save-edit]').click();
      for (const p of [b, a2]) {
        await waitFor(p, () => document.querySelector('.image-chat-thread[data-chat-id] .image-chat-text')?.textContent === 'Old brass, or bronze?');
      }
      await b.screenshot({ path: join(SHOTS, 'text-thread.png') });

      // A passage whose own text is markup: quoted and listed as text, never run.
      await discuss(b, 'p4', HOSTILE_QUOTE, 'What does the sign mean?');
      for (const p of [a1, a2, b]) await waitCount(p, 2);
      assert.deepEqual((await highlighted(a2, 'image-chat')).concat(await highlighted(a2, 'image-chat-open')).sort(), [HOSTILE_QUOTE, 'old brass'].sort());
      const entries = await a1.locator('.image-chat-list button[data-chat-id]').allTextContents();
      assert.ok(entries.some((e) => e.includes(HOSTILE_QUOTE)), entries.join(' | '));
      assert.equal(await a1.evaluate(() => document.querySelectorAll('.image-chat-topbar img, .image-chat-thread img:not(.image-chat-avatar)').length), 0);

      // Ada deletes her discussion; the count drops everywhere and its highlight goes.
      await a1.locator('.image-chat-thread[data-chat-id] [data-action=close]').click().catch(() => {});
      await openByClick(a1, 'p1', 'old brass');
      await a1.locator('.image-chat-thread[data-chat-id] [data-action=delete]').click();
      await a1.locator('.image-chat-thread[data-chat-id] [data-action=delete]').click();
      for (const p of [a1, a2, b]) await waitCount(p, 1);
      assert.deepEqual(await highlighted(a1), [HOSTILE_QUOTE]);
      for (const p of [a1, a2, b]) {
        assert.equal(await p.evaluate(() => window.__pwned), undefined);
      }
    } finally {
      await ada.close();
      await bob.close();
    }
  });
});

test('re-anchoring: a paragraph inserted before a passage, then the passage deleted (listed as changed)', async () => {
  await withSite(async (_ctx, host) => {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    try {
      const p = await open(ctx, host.url);
      await discuss(p, 'p3', 'western ridge', 'Which ridge is it?');
      await p.keyboard.press('Escape');
      await waitFor(p, () => !document.querySelector('.image-chat-thread[data-chat-id]'));
      assert.deepEqual(await highlighted(p), ['western ridge']);

      // The site inserts a paragraph above (as a CMS or a framework would): found again.
      await p.evaluate(() => {
        const extra = document.createElement('p');
        extra.textContent = 'Editor’s note: a new opening paragraph about the western ridge trail.';
        document.getElementById('p1').before(extra);
      });
      await waitFor(p, () => {
        const h = CSS.highlights.get('image-chat');
        return h && [...h].some((r) => r.toString() === 'western ridge' && document.getElementById('p3').contains(r.startContainer));
      });
      assert.equal(await p.locator('.image-chat-list ol[data-changed] button').count(), 0);

      // The passage is deleted: listed as on text that changed; its thread still opens.
      await p.evaluate(() => document.getElementById('p3').remove());
      await waitFor(p, () => document.querySelectorAll('.image-chat-list ol[data-changed] button').length === 1);
      assert.deepEqual(await highlighted(p), []);
      assert.equal(await p.locator('.image-chat-count').textContent(), '1 discussion');
      await p.locator('.image-chat-topbar summary').click();
      await p.locator('.image-chat-list ol[data-changed] button').click();
      await waitFor(p, () => document.querySelector('.image-chat-thread[data-chat-id] .image-chat-text')?.textContent === 'Which ridge is it?');
      await p.screenshot({ path: join(SHOTS, 'text-changed.png') });
    } finally {
      await ctx.close();
    }
  });
});

test('the server killed and restarted, then the browser offline: status, failure, resync', async () => {
  await withSite(async (site, host) => {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    let restarted;
    try {
      const p = await open(ctx, host.url);
      await discuss(p, 'p2', 'evening breeze', 'Before the crash.');
      await waitFor(p, () => !document.querySelector('.image-chat-thread [data-pending]'));
      await p.keyboard.press('Escape');

      await site.server.kill();
      await waitFor(p, () => ['reconnecting', 'offline'].includes(document.querySelector('.image-chat-topbar').dataset.state));
      // A discussion attempted while disconnected fails visibly, with Retry; nothing is queued.
      await discuss(p, 'p1', 'the pier', 'While down.');
      await waitFor(p, () => document.querySelector('.image-chat-thread[data-chat-id] [data-failed]'));

      restarted = await startServer({ dbDir: site.server.dir, port: site.server.port, args: ['--tenants', site.tenants] });
      await waitFor(p, () => document.querySelector('.image-chat-topbar').dataset.state === 'live');
      await p.locator('.image-chat-thread[data-chat-id] [data-action=retry]').click();
      await waitCount(p, 2);
      await waitFor(p, () => !document.querySelector('.image-chat-thread [data-pending], .image-chat-thread [data-failed]'));

      await ctx.setOffline(true);
      await waitFor(p, () => document.querySelector('.image-chat-topbar').dataset.state !== 'live');
      await p.keyboard.press('Escape');
      await discuss(p, 'p3', 'the island', 'Offline now.');
      await waitFor(p, () => document.querySelector('.image-chat-thread[data-chat-id] [data-failed]'));
      await ctx.setOffline(false);
      await waitFor(p, () => document.querySelector('.image-chat-topbar').dataset.state === 'live');
      // Nothing was lost: the two discussions made while connected are still there.
      const fresh = await open(ctx, host.url);
      await waitCount(fresh, 2);
      assert.deepEqual(await highlighted(fresh), ['evening breeze', 'the pier'].sort());
    } finally {
      await ctx.close();
      await restarted?.kill();
    }
  });
});

test('keyboard only: select text with the keys, discuss it, reach every discussion from the bar', async () => {
  await withSite(async (_ctx, host) => {
    const ctx = await browser.newContext({ viewport: { width: 1000, height: 760 } });
    try {
      const p = await open(ctx, host.url);
      // Tab to the bar's "Select text with the keyboard".
      let found = false;
      for (let i = 0; i < 20 && !found; i++) {
        await p.keyboard.press('Tab');
        found = await p.evaluate(() => document.activeElement?.dataset.textAction === 'select-keys');
      }
      assert.ok(found, 'the keyboard selection button is reachable with Tab');
      await p.keyboard.press('Enter');
      // The browser tells the page about a selection change in a task of its own, so keys
      // pressed back to back (faster than any person) can reach the widget before the change
      // does. This listener comes after the widget's: once it has seen the final selection,
      // so has the widget.
      await p.evaluate(() => {
        window.seenSelection = '';
        document.addEventListener('selectionchange', () => {
          window.seenSelection = document.getSelection().toString();
        });
      });
      // Past "The lake at dusk" and into the first paragraph: two words, then select two more.
      for (let i = 0; i < 6; i++) await p.keyboard.press('Control+ArrowRight');
      for (let i = 0; i < 2; i++) await p.keyboard.press('Control+Shift+ArrowRight');
      await waitFor(p, () => !document.querySelector('.image-chat-prompt').hidden);
      await waitFor(p, () => window.seenSelection !== '' && window.seenSelection === document.getSelection().toString());
      const selected = await p.evaluate(() => document.getSelection().toString());
      assert.ok(selected.trim().split(/\s+/).length >= 2, `selected "${selected}"`);
      await p.keyboard.press('Enter');
      await waitFor(p, () => document.activeElement?.matches('.image-chat-thread[data-draft] textarea'));
      await p.keyboard.type('Typed without a mouse.');
      await p.keyboard.press('Control+Enter');
      await waitCount(p, 1);
      await waitFor(p, () => !document.querySelector('.image-chat-thread [data-pending]'));
      assert.deepEqual(await highlighted(p, 'image-chat-open'), [selected]);
      await p.keyboard.press('Escape');
      // Every discussion is in the bar's list: Tab there, open it, Escape returns focus.
      await p.locator('.image-chat-topbar summary').focus();
      await p.keyboard.press('Enter');
      await p.keyboard.press('Tab');
      assert.equal(await p.evaluate(() => document.activeElement?.matches('.image-chat-list button[data-chat-id]')), true);
      await p.keyboard.press('Enter');
      await waitFor(p, () => document.querySelector('.image-chat-thread[data-chat-id] .image-chat-text')?.textContent === 'Typed without a mouse.');
      await p.keyboard.press('Escape');
      await waitFor(p, () => document.activeElement?.matches('.image-chat-list button[data-chat-id]'));
    } finally {
      await ctx.close();
    }
  });
});

test('a moderator on a phone, in French: touch selection, a sheet, a deletion, a language switch', async () => {
  const secret = 'text-e2e-secret-0123456789abcdef0123456';
  await withSite(
    async ({ server }, host, pages) => {
      const grace = signSso(secret, { id: 'g-1', name: 'Grace', isModerator: true }, 'site', server);
      // One article at two addresses (an English and a French edition): one page id.
      pages['/index.html'] = articlePage(server, { pageId: 'lake-story' });
      pages['/fr.html'] = articlePage(server, { locale: 'fr', auth: grace, pageId: 'lake-story' });
      const desk = await browser.newContext({ viewport: { width: 1000, height: 760 } });
      const phone = await browser.newContext({
        viewport: { width: 360, height: 740 },
        deviceScaleFactor: 2,
        isMobile: true,
        hasTouch: true,
      });
      try {
        const ada = await open(desk, host.url);
        await discuss(ada, 'p2', 'which way the evening breeze', 'Is this the north wind?');
        const g = await open(phone, `${host.origin}/fr.html`);
        await waitCount(g, 1);
        assert.equal(
          await g.locator('.image-chat-topbar [data-text-action=select-keys]').getAttribute('aria-label') ??
            (await g.locator('.image-chat-topbar [data-text-action=select-keys]').textContent()),
          'Sélectionner du texte au clavier',
        );

        // A touch selection (the finger goes down, the handles select, the finger lifts): the
        // prompt comes in French, below the selection handles, inside the narrow screen.
        const quote = 'like a coin on its edge';
        const r = await rectOf(g, 'p3', quote);
        await g.evaluate(
          ([quote]) => {
            const p = document.getElementById('p3');
            const at = { bubbles: true, composed: true, pointerType: 'touch', isPrimary: true };
            p.dispatchEvent(new PointerEvent('pointerdown', at));
            const node = p.firstChild;
            const start = node.data.indexOf(quote);
            document.getSelection().setBaseAndExtent(node, start, node, start + quote.length);
            p.dispatchEvent(new PointerEvent('pointerup', at));
          },
          [quote],
        );
        await waitFor(g, () => !document.querySelector('.image-chat-prompt').hidden);
        const discussButton = g.locator('.image-chat-prompt [data-text-action=discuss]');
        assert.equal(await discussButton.textContent(), 'Discuter de ce texte');
        const prompt = await g.locator('.image-chat-prompt').boundingBox();
        assert.ok(prompt.y >= r.bottom + 30, `prompt at ${prompt.y}, below the handles under ${r.bottom}`);
        assert.ok(prompt.x >= 0 && prompt.x + prompt.width <= 360, `prompt inside the screen: ${JSON.stringify(prompt)}`);
        await g.screenshot({ path: join(SHOTS, 'text-phone.png') });

        // The draft is a sheet across the phone's screen; the discussion reaches Ada live.
        await discussButton.tap();
        const draft = g.locator('.image-chat-thread[data-draft]');
        await draft.waitFor();
        assert.equal(await draft.getAttribute('data-place'), 'sheet');
        const sheet = await draft.boundingBox();
        assert.ok(sheet.x >= 0 && sheet.x + sheet.width <= 360, `sheet inside the screen: ${JSON.stringify(sheet)}`);
        await draft.locator('textarea').fill('Une pièce sur la tranche : joli.');
        await draft.locator('[data-action=post]').tap();
        await waitCount(ada, 2);
        await waitCount(g, 2);

        // Grace moderates: Ada's discussion shows her a delete button; deleting it reaches Ada.
        await g.keyboard.press('Escape');
        await g.locator('.image-chat-topbar summary').tap();
        const adaEntry = g.locator('.image-chat-list button[data-chat-id]', { hasText: 'which way the evening breeze' });
        await adaEntry.tap();
        const thread = g.locator('.image-chat-thread[data-chat-id]:not([data-draft])');
        await waitFor(g, () => document.querySelector('.image-chat-thread[data-chat-id] .image-chat-text')?.textContent === 'Is this the north wind?');
        const del = thread.locator('[data-action=delete]').first();
        await del.tap();
        await del.tap();
        await waitCount(ada, 1);
        await waitCount(g, 1);
        assert.deepEqual(await highlighted(ada), ['like a coin on its edge']);

        // The language switched in place: the bar and a new prompt speak English, nothing
        // remounted (the discussion is still counted, the top bar is the same element).
        await g.evaluate(() => {
          window.__bar = document.querySelector('.image-chat-topbar');
          window.ImageChat.instances[0].update({ locale: 'en' });
        });
        await waitFor(
          g,
          () => document.querySelector('.image-chat-topbar [data-text-action=select-keys]')?.getAttribute('aria-label') === 'Select text with the keyboard' ||
            document.querySelector('.image-chat-topbar [data-text-action=select-keys]')?.textContent === 'Select text with the keyboard',
        );
        assert.equal(await g.evaluate(() => document.querySelector('.image-chat-topbar') === window.__bar), true);
        assert.equal(await g.locator('.image-chat-count').textContent(), '1 discussion');
        assert.equal(await g.locator('.image-chat-prompt [data-text-action=discuss]').textContent(), 'Discuss this text');
      } finally {
        await desk.close();
        await phone.close();
      }
    },
    { secret },
  );
});
