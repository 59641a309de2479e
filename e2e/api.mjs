// A minimal protocol client for the tests (Node's WebSocket, no browser): it plays "another
// client" that adds changes through the server's real WebSocket API.

import { randomUUID } from 'node:crypto';
import { WAIT_MS } from './harness.mjs';

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
    const broadcastId = randomUUID();
    this.send({ ...message, broadcastId });
    const answer = await this.next((m) => (m.type === 'ack' || m.type === 'error') && m.broadcastId === broadcastId);
    if (answer.type === 'error') throw new Error(`API op refused: ${answer.code}`);
    return answer;
  }

  async createChat(x, y, text) {
    const chatId = randomUUID();
    const commentId = randomUUID();
    await this.op({ type: 'create-chat', chatId, anchor: { type: 'point', x, y }, commentId, text });
    return { chatId, commentId };
  }

  async reply(chatId, text) {
    const commentId = randomUUID();
    await this.op({ type: 'add-comment', chatId, commentId, text });
    return commentId;
  }

  close() {
    this.ws.close();
  }
}
