// The /admin dashboard: signs in with a tenant id and its API key (kept in sessionStorage,
// sent as `Authorization: Bearer …` to this server's admin API, never put in a URL), then
// shows usage per day (an SVG chart drawn here), the live connection count (polled), the
// busiest images (with their viewers now) and lock/unlock, and recent discussions with delete and lock/unlock.
// Everything that comes from users is written with textContent: no HTML from the API is ever
// parsed. No inline script or style (the page's CSP forbids them).
'use strict';

(() => {
  const STORAGE = 'image-chat-admin';
  const LIVE_EVERY_MS = 3000;
  const REFRESH_EVERY_MS = 30000;
  const SVG = 'http://www.w3.org/2000/svg';
  const METRIC_NAMES = {
    pubSubMessageCount: 'Messages sent',
    pubSubBandwidth: 'Bytes sent',
    connections: 'Connections',
    peakViewers: 'Peak viewers',
    discussions: 'Discussions',
    comments: 'Comments',
    ops: 'Changes',
  };

  const $ = (id) => document.getElementById(id);
  let session = null;
  let usage = null;
  let live = null;
  let timers = [];

  // ---- errors ------------------------------------------------------------------------------

  /** An admin API failure: `kind` is 'auth', 'network' or 'api'. */
  class ApiFailure extends Error {
    constructor(kind, message, status) {
      super(message);
      this.kind = kind;
      this.status = status;
    }
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message;
    box.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  function say(message) {
    $('status').textContent = message;
  }

  // ---- the API -----------------------------------------------------------------------------

  async function api(method, path, { query, body } = {}) {
    if (!session) throw new ApiFailure('auth', 'Not signed in.');
    let url = `/admin/api/v1/tenants/${encodeURIComponent(session.tenant)}${path}`;
    if (query) url += `?${new URLSearchParams(query)}`;
    const headers = { Authorization: `Bearer ${session.key}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch {
      throw new ApiFailure('network', 'Cannot reach the server. Check the network connection; the dashboard retries on its own.');
    }
    let json = null;
    try {
      json = await response.json();
    } catch {
      // A proxy's HTML error page, an empty body: reported below by status.
    }
    if (response.ok && json) return json;
    if (response.status === 401) {
      throw new ApiFailure('auth', 'Wrong tenant id or API key: the server did not accept them.', 401);
    }
    const why = json && typeof json.message === 'string' ? json.message : `HTTP ${response.status}`;
    const code = json && typeof json.code === 'string' ? ` (${json.code})` : '';
    if (response.status === 429) {
      throw new ApiFailure('api', `Too many requests: ${why}. Wait a moment.`, 429);
    }
    throw new ApiFailure('api', `The server refused: ${why}${code}.`, response.status);
  }

  /** Shows a failure; a refused key signs out. */
  function failed(err) {
    if (err instanceof ApiFailure && err.kind === 'auth' && session) {
      signOut();
      showError(err.message);
      return;
    }
    showError(err instanceof ApiFailure ? err.message : `Something went wrong: ${err}`);
  }

  // ---- formatting --------------------------------------------------------------------------

  const integer = new Intl.NumberFormat('en');

  function bytes(n) {
    if (n < 1024) return `${integer.format(n)} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u += 1;
    }
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
  }

  function amount(metric, n) {
    return metric === 'pubSubBandwidth' ? bytes(n) : integer.format(n);
  }

  /** `YYYY-MM-DD HH:MM` in UTC. */
  function when(ms) {
    if (typeof ms !== 'number') return '–';
    return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  }

  /** Every day from `from` to `to` (YYYY-MM-DD, UTC), inclusive. */
  function daysBetween(from, to) {
    const out = [];
    const end = Date.parse(`${to}T00:00:00Z`);
    for (let t = Date.parse(`${from}T00:00:00Z`); t <= end && out.length <= 366; t += 86400000) {
      out.push(new Date(t).toISOString().slice(0, 10));
    }
    return out;
  }

  /** A round number at least `max` for the chart's scale (1, 2, 5 × 10^n). */
  function niceCeil(max) {
    if (max <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(max));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else if (k.startsWith('data-') || k.startsWith('aria-')) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- usage chart -------------------------------------------------------------------------

  function drawUsage() {
    const holder = $('chart');
    holder.replaceChildren();
    if (!usage) {
      $('usage-totals').textContent = '';
      $('usage-table').tBodies[0].replaceChildren();
      return;
    }
    const metric = $('metric').value;
    const byDay = new Map(usage.days.map((d) => [d.day, d]));
    const days = daysBetween(usage.from, usage.to);
    const values = days.map((day) => byDay.get(day)?.[metric] ?? 0);
    const max = niceCeil(Math.max(0, ...values));
    const W = 720;
    const H = 240;
    const left = 56;
    const bottom = 24;
    const top = 10;
    const plotW = W - left - 8;
    const plotH = H - top - bottom;
    const name = METRIC_NAMES[metric] ?? metric;
    const total = values.reduce((a, b) => a + b, 0);
    const chart = svg('svg', {
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': `${name} per day from ${usage.from} to ${usage.to}: ${amount(metric, total)} in all, at most ${amount(metric, Math.max(0, ...values))} a day`,
      'data-metric': metric,
    });
    for (let i = 0; i <= 4; i += 1) {
      const v = (max * i) / 4;
      const y = top + plotH - (plotH * i) / 4;
      chart.append(svg('line', { class: 'grid-line', x1: left, x2: W - 8, y1: y, y2: y }));
      chart.append(svg('text', { class: 'axis', x: left - 6, y: y + 4, 'text-anchor': 'end' }, amount(metric, Math.round(v))));
    }
    const step = plotW / Math.max(1, days.length);
    const barW = Math.max(1, step * 0.7);
    days.forEach((day, i) => {
      const v = values[i];
      const h = (plotH * v) / max;
      const x = left + i * step + (step - barW) / 2;
      const bar = svg('rect', {
        class: 'bar',
        x: x.toFixed(1),
        y: (top + plotH - h).toFixed(1),
        width: barW.toFixed(1),
        height: Math.max(0, h).toFixed(1),
        'data-day': day,
        'data-value': v,
      });
      bar.append(svg('title', {}, `${day}: ${amount(metric, v)}`));
      chart.append(bar);
      const every = Math.max(1, Math.ceil(days.length / 6));
      if (i % every === 0 || i === days.length - 1) {
        chart.append(svg('text', { class: 'axis', x: (x + barW / 2).toFixed(1), y: H - 6, 'text-anchor': 'middle' }, day.slice(5)));
      }
    });
    if (total === 0) {
      chart.append(svg('text', { class: 'empty', x: left + plotW / 2, y: top + plotH / 2, 'text-anchor': 'middle' }, 'Nothing counted in this period yet'));
    }
    holder.append(chart);
    const t = usage.totals;
    $('usage-totals').textContent =
      `${usage.from} to ${usage.to} (UTC): ${integer.format(t.pubSubMessageCount)} messages, ${bytes(t.pubSubBandwidth)} sent, ` +
      `${integer.format(t.connections)} connections, ${integer.format(t.discussions)} discussions, ${integer.format(t.comments)} comments, ` +
      `peak ${integer.format(t.peakViewers)} viewers.`;
    const body = $('usage-table').tBodies[0];
    body.replaceChildren(
      ...usage.days
        .slice()
        .reverse()
        .map((d) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row', text: d.day }),
            el('td', { class: 'num', text: integer.format(d.pubSubMessageCount) }),
            el('td', { class: 'num', text: bytes(d.pubSubBandwidth) }),
            el('td', { class: 'num', text: integer.format(d.connections) }),
            el('td', { class: 'num', text: integer.format(d.peakViewers) }),
            el('td', { class: 'num', text: integer.format(d.discussions) }),
            el('td', { class: 'num', text: integer.format(d.comments) }),
          ),
        ),
    );
  }

  // ---- live, busiest, recent ---------------------------------------------------------------

  function drawLive() {
    if (!live) return;
    $('live-connections').textContent = integer.format(live.connections);
    $('live-detail').textContent =
      live.connections === 0
        ? 'No widget is connected right now.'
        : `Widgets connected to this server now (${live.connections === 1 ? 'one connection' : `${integer.format(live.connections)} connections`}).`;
  }

  function lockButton(image, locked) {
    const b = el('button', {
      type: 'button',
      class: 'quiet',
      text: locked ? 'Unlock' : 'Lock',
      'data-action': locked ? 'unlock' : 'lock',
      'data-image': image,
      'aria-label': `${locked ? 'Unlock' : 'Lock'} image ${image}`,
    });
    b.addEventListener('click', () => act(b, async () => {
      if (locked) await api('DELETE', '/locks', { query: { image } });
      else await api('PUT', '/locks', { body: { image } });
      say(`${locked ? 'Unlocked' : 'Locked'} ${image}.`);
    }));
    return b;
  }

  function deleteButton(item) {
    const chat = item.chat;
    const b = el('button', {
      type: 'button',
      class: 'danger',
      text: 'Delete',
      'data-action': 'delete',
      'data-chat-id': chat.id,
      'aria-label': `Delete the discussion by ${chat.opening.author.name}`,
    });
    let disarm = null;
    b.addEventListener('click', () => {
      // Deleting cannot be undone: the first press arms the button, the second deletes.
      if (!b.hasAttribute('data-armed')) {
        b.setAttribute('data-armed', '');
        b.textContent = 'Confirm delete';
        say('Press "Confirm delete" to delete the discussion and all its comments.');
        disarm = setTimeout(() => {
          b.removeAttribute('data-armed');
          b.textContent = 'Delete';
        }, 6000);
        return;
      }
      clearTimeout(disarm);
      act(b, async () => {
        await api('DELETE', `/chats/${encodeURIComponent(chat.id)}`, { query: { image: item.image } });
        say('Discussion deleted; open widgets removed it.');
      });
    });
    return b;
  }

  /** Runs an action of a button, then reloads what it changed. */
  async function act(button, action) {
    button.disabled = true;
    clearError();
    try {
      await action();
      await refreshActivity();
    } catch (err) {
      failed(err);
    } finally {
      button.disabled = false;
    }
  }

  function drawActivity(activity) {
    const busiest = $('busiest').tBodies[0];
    busiest.replaceChildren(
      ...activity.busiest.map((img) => {
        const state = el('td', {});
        state.append(lockButton(img.image, img.locked));
        if (img.locked) state.prepend(el('span', { class: 'badge locked', text: 'locked' }), ' ');
        return el(
          'tr',
          { 'data-image': img.image },
          el('td', { class: 'image-id', text: img.image }),
          el('td', { class: 'num', text: integer.format(img.chats), 'data-chats': '' }),
          el('td', { class: 'num', text: integer.format(img.viewers), 'data-viewers': '' }),
          el('td', { text: when(img.lastActivityAt) }),
          state,
        );
      }),
    );
    $('busiest-empty').hidden = activity.busiest.length > 0;

    const recent = $('recent');
    recent.replaceChildren(
      ...activity.recent.map((item) => {
        const c = item.chat;
        const author = el('strong', { text: c.opening.author.name });
        const head = el('div', { class: 'meta' }, author);
        if (c.opening.author.signedIn) head.append(el('span', { class: 'badge', text: 'signed in' }));
        if (c.resolved) head.append(el('span', { class: 'badge', text: 'resolved' }));
        if (item.imageLocked) head.append(el('span', { class: 'badge locked', text: 'image locked' }));
        const replies = c.comments - 1;
        const meta = el('div', {
          class: 'meta',
          text: `on ${item.image} · opened ${when(c.opening.createdAt)} · ${replies} ${replies === 1 ? 'reply' : 'replies'} · last activity ${when(c.lastActivityAt)} UTC`,
        });
        const actions = el('div', { class: 'actions' }, deleteButton(item), lockButton(item.image, item.imageLocked));
        return el(
          'li',
          { 'data-chat-id': c.id, 'data-image': item.image },
          head,
          el('p', { class: 'text', text: c.opening.text }),
          meta,
          actions,
        );
      }),
    );
    $('recent-empty').hidden = activity.recent.length > 0;
  }

  // ---- loading -----------------------------------------------------------------------------

  function stamp() {
    $('updated').textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
  }

  async function refreshLive() {
    live = await api('GET', '/live');
    drawLive();
  }

  async function refreshActivity() {
    drawActivity(await api('GET', '/activity', { query: { limit: 20 } }));
    stamp();
  }

  async function refreshUsage() {
    try {
      usage = await api('GET', '/usage');
    } catch (err) {
      // A server without the usage endpoint (404 not-found): say so in the card, not as an
      // error of the whole page.
      if (!(err instanceof ApiFailure && err.status === 404)) throw err;
      usage = null;
      drawUsage();
      $('chart').append(el('p', { class: 'hint', text: 'This server does not report usage.', 'data-no-usage': '' }));
      return;
    }
    drawUsage();
  }

  /** Loads every panel; each one that works is shown even if another fails (the first
   *  failure is thrown: a refused key before anything else). */
  async function refreshAll() {
    const results = await Promise.allSettled([refreshLive(), refreshActivity(), refreshUsage()]);
    const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    if (failures.length === 0) {
      clearError();
      return;
    }
    throw failures.find((e) => e instanceof ApiFailure && e.kind === 'auth') ?? failures[0];
  }

  function startPolling() {
    stopPolling();
    const every = (ms, fn) =>
      timers.push(
        setInterval(() => {
          if (document.hidden || !session) return;
          fn().then(() => {
            // A poll that works again after a network failure clears its message.
            if (!$('error').hidden && navigator.onLine !== false) clearError();
          }, failed);
        }, ms),
      );
    every(LIVE_EVERY_MS, refreshLive);
    every(REFRESH_EVERY_MS, () => Promise.all([refreshActivity(), refreshUsage()]));
  }

  function stopPolling() {
    for (const t of timers) clearInterval(t);
    timers = [];
  }

  // ---- signing in and out ------------------------------------------------------------------

  function showSignedIn(signedIn) {
    $('login').hidden = signedIn;
    $('dash').hidden = !signedIn;
    $('who').hidden = !signedIn;
    $('who-tenant').textContent = signedIn ? session.tenant : '';
  }

  async function signIn(tenant, key) {
    session = { tenant, key };
    clearError();
    say('Signing in…');
    try {
      await refreshAll();
    } catch (err) {
      say('');
      // A refused key is not kept; a network failure keeps the session to retry.
      if (err instanceof ApiFailure && err.kind === 'auth') {
        session = null;
        sessionStorage.removeItem(STORAGE);
        showSignedIn(false);
        showError(err.message);
        $('api-key').focus();
        return;
      }
      failed(err);
    }
    sessionStorage.setItem(STORAGE, JSON.stringify(session));
    showSignedIn(true);
    say('');
    startPolling();
  }

  function signOut() {
    stopPolling();
    session = null;
    usage = null;
    live = null;
    sessionStorage.removeItem(STORAGE);
    $('api-key').value = '';
    showSignedIn(false);
    say('');
  }

  function init() {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const tenant = $('tenant').value.trim();
      const key = $('api-key').value.trim();
      if (!tenant || !key) {
        showError('Enter the tenant id and its API key.');
        (tenant ? $('api-key') : $('tenant')).focus();
        return;
      }
      $('sign-in').disabled = true;
      signIn(tenant, key).finally(() => {
        $('sign-in').disabled = false;
      });
    });
    $('sign-out').addEventListener('click', () => {
      signOut();
      clearError();
      $('tenant').focus();
    });
    $('refresh').addEventListener('click', () => {
      clearError();
      refreshAll().then(() => say('Refreshed.'), failed);
    });
    $('metric').addEventListener('change', drawUsage);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && session) refreshLive().catch(failed);
    });
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(STORAGE) ?? 'null');
    } catch {
      sessionStorage.removeItem(STORAGE);
    }
    if (saved && typeof saved.tenant === 'string' && typeof saved.key === 'string') {
      $('tenant').value = saved.tenant;
      signIn(saved.tenant, saved.key);
    } else {
      showSignedIn(false);
    }
  }

  init();
})();
