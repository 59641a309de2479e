// End-to-end harness: starts the real image-chat server (release-like `server` profile binary)
// on 127.0.0.1:0 with a fresh SQLite file, and Debian's Chromium through playwright-core (never a
// downloaded browser). Every process started here is stopped by the returned handles.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SERVER_BIN =
  process.env.IMAGE_CHAT_SERVER_BIN ?? join(ROOT, 'target', 'debug', 'image-chat-server');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Bound on every wait: generous for a loaded 2-core CI machine, finite so a bug fails fast. */
export const WAIT_MS = 15_000;

/** Waits until `fn(arg)` is truthy in the page (polled every 50 ms, at most WAIT_MS). */
export function waitFor(page, fn, arg) {
  return page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
}

/**
 * Starts a server. `dbDir` lets a test restart a server on the same database file.
 * `assets: false` gives no --www-dir / --pkg-dir: the widget built into the binary is served.
 * `tls: true` serves https:// and wss:// itself, with a self-signed certificate made for the run
 * (browsers must then be told to accept it). Resolves once the server printed its bound address.
 */
export async function startServer({ dbDir, port = 0, args = [], assets = true, tls = false } = {}) {
  const dir = dbDir ?? mkdtempSync(join(tmpdir(), 'image-chat-e2e-'));
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`server binary missing at ${SERVER_BIN}: run cargo build -p image-chat-server (scripts/test.sh does)`);
  }
  const child = spawn(
    SERVER_BIN,
    [
      'serve',
      '--listen', `127.0.0.1:${port}`,
      '--database', join(dir, 'e2e.db'),
      ...(assets ? ['--www-dir', join(ROOT, 'www'), '--pkg-dir', join(ROOT, 'pkg')] : []),
      ...(tls ? selfSignedTlsArgs(dir) : []),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } },
  );
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in time')), WAIT_MS);
    lines.once('line', (line) => {
      clearTimeout(timer);
      const m = /listening on (https?:\/\/\S+)/.exec(line);
      m ? resolve(m[1]) : reject(new Error(`unexpected server output: ${line}`));
    });
    child.once('exit', () => reject(new Error('server exited before listening')));
  });
  const port_ = Number(new URL(url).port);
  return {
    url,
    port: port_,
    dir,
    child,
    /** SIGKILL: no goodbye to the clients, as in a crash. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    /** SIGTERM: graceful shutdown. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    /** Removes the database directory (only when this server created it). */
    cleanup() {
      if (!dbDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made for one test in `dir` (openssl,
 * P-256, valid for a day): the server's `--tls-cert` / `--tls-key` arguments.
 */
function selfSignedTlsArgs(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return ['--tls-cert', cert, '--tls-key', key];
}

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Chromium with its own incognito contexts; `extraArgs` are added to its command line. */
export async function launchBrowser(extraArgs = []) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extraArgs] });
}

/**
 * Chromium on a profile kept in `userDataDir`, as one context: unlike `launchBrowser()`'s
 * contexts (incognito, caches in memory), it keeps the disk caches a returning visitor has (the
 * HTTP cache, and V8's code cache, which Chromium only keeps for on-disk profiles) across a close
 * and a new launch on the same directory.
 */
export async function launchProfile(userDataDir, contextOptions = {}, extraArgs = []) {
  return chromium.launchPersistentContext(userDataDir, {
    ...contextOptions,
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
}

const HOST_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/**
 * Starts a static "site" on its own 127.0.0.1:0 origin, the way every real site embeds the
 * widget: the host page never shares an origin with the image-chat server. `pages` maps a path
 * ("/index.html") to `{ body, headers }` (an in-memory page, e.g. one that carries a CSP header);
 * any other path is read from `root` (a directory, e.g. a Vite build) when given. Resolves to
 * `{ url, origin, close() }`.
 */
export async function startHostServer({ root, pages = {} } = {}) {
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const { extname, normalize } = await import('node:path');
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://host').pathname;
    const page = pages[path] ?? (path === '/' ? pages['/index.html'] : undefined);
    if (page) {
      res.writeHead(200, { 'content-type': HOST_TYPES['.html'], ...(page.headers ?? {}) });
      res.end(page.body);
      return;
    }
    if (root) {
      const rel = normalize(decodeURIComponent(path === '/' ? '/index.html' : path));
      if (!rel.startsWith('..') && !rel.includes('\0')) {
        try {
          const body = await readFile(join(root, rel));
          res.writeHead(200, { 'content-type': HOST_TYPES[extname(rel)] ?? 'application/octet-stream' });
          res.end(body);
          return;
        } catch {
          // fall through to 404
        }
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  // Keep-alive sockets would hold close() open until the browser lets go.
  const sockets = new Set();
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/`,
    origin,
    port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The demo page as a real site embeds it: served from its OWN origin (a host server on another
 * port, with the demo's own files: demo.js, sample.svg), its loader tag pointing at the
 * image-chat server's embed.js. `headers` go on the page (e.g. a Content-Security-Policy);
 * `transform` rewrites its HTML further. Resolves to the host server (see startHostServer).
 */
export async function startDemoSite(server, { headers = {}, transform = (html) => html } = {}) {
  const tag = '<script src="embed.js"';
  const page = readFileSync(join(ROOT, 'www', 'index.html'), 'utf8');
  if (!page.includes(tag)) throw new Error('www/index.html has no loader tag to point at the server');
  const body = transform(page.replace(tag, `<script src="${server.url}/embed.js"`));
  const site = await startHostServer({ root: join(ROOT, 'www'), pages: { '/index.html': { body, headers } } });
  if (site.origin === new URL(server.url).origin) throw new Error('the site must not share the server\'s origin');
  return site;
}
