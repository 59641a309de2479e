// A minimal protocol client for the tests (Node's WebSocket, no browser): it plays "another
// client" that adds changes through the server's real WebSocket API.

import { createHmac } from 'node:crypto';

import { WAIT_MS } from './harness.mjs';

/**
 * A user signed as the site's backend does (docs/SECURITY.md): base64 JSON, HMAC-SHA256 with the
 * tenant's SSO `secret` over the tenant, the audience (the server's host as the widget reaches
 * it), the time and the data.
 */
export function signSso(secret, user, tenant, server) {
  const userData = Buffer.from(JSON.stringify(user)).toString('base64');
  const timestamp = Date.now();
  const audience = new URL(server.url).host;
  const hash = createHmac('sha256', secret)
    .update(`${tenant}\n${audience}\n${timestamp}\n${userData}`)
    .digest('hex');
  return { type: 'sso', userData, timestamp, hash };
}

/**
 * A fresh id as the protocol writes it: a random UUID v4 (16 bytes, version and variant bits
 * set) in unpadded base64url, 22 characters.
 */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return Buffer.from(bytes).toString('base64url');
}

export class ApiClient {
  static async join(baseUrl, imageId, name = 'API client') {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + '/ws');
    const client = new ApiClient(ws);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true });
      ws.addEventListener('error', () => reject(new Error('API socket failed to open')), { once: true });
    });
    client.send({ type: 'hello', protocol: 1, tenantId: 'demo', imageId, auth: { type: 'anonymous', name } });
    client.welcome = await client.next((m) => m.type === 'welcome');
    return client;
  }

  constructor(ws) {
    this.ws = ws;
    this.inbox = [];
    this.waiters = [];
    ws.addEventListener('message', (e) => {
      this.inbox.push(JSON.parse(e.data));
      this.flush();
    });
  }

  flush() {
    for (const w of [...this.waiters]) {
      const i = this.inbox.findIndex(w.match);
      if (i >= 0) {
        const [m] = this.inbox.splice(i, 1);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
  }

  next(match) {
    return new Promise((resolve, reject) => {
      const w = { match, resolve, timer: setTimeout(() => reject(new Error('API: no matching message in time')), WAIT_MS) };
      this.waiters.push(w);
      this.flush();
    });
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  /** Sends an op and resolves with its ack (rejects on an error frame). */
  async op(message) {
    const broadcastId = newId();
    this.send({ ...message, broadcastId });
    const answer = await this.next((m) => (m.type === 'ack' || m.type === 'error') && m.broadcastId === broadcastId);
    if (answer.type === 'error') throw new Error(`API op refused: ${answer.code}`);
    return answer;
  }

  /** Creates a discussion; its opening comment's id is the chat's id. */
  async createChat(x, y, text) {
    const chatId = newId();
    await this.op({ type: 'create-chat', chatId, anchor: [x, y], text });
    return { chatId, commentId: chatId };
  }

  async reply(chatId, text) {
    const commentId = newId();
    await this.op({ type: 'add-comment', chatId, commentId, text });
    return commentId;
  }

  close() {
    this.ws.close();
  }
}
