/** A WebSocket client playing the CMS: sends commands, collects every message, waits for one that matches. */
import WebSocket from 'ws';

export interface CmsMessage {
  type: string;
  [key: string]: any;
}

export class CmsClient {
  readonly messages: Array<CmsMessage & { receivedAt: number }> = [];
  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      try {
        this.messages.push({ ...(JSON.parse(data.toString()) as CmsMessage), receivedAt: Date.now() });
      } catch {
        // the relay only sends JSON; anything else fails the waiting test
      }
    });
  }

  static async connect(url: string): Promise<CmsClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new CmsClient(socket);
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (received after `since`) that matches. */
  async waitFor(match: (m: CmsMessage) => boolean, timeoutMs = 20_000, since = 0): Promise<CmsMessage> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((m) => m.receivedAt >= since && match(m));
      if (found) return found;
      if (Date.now() > end) throw new Error(`no matching message within ${timeoutMs} ms; last: ${JSON.stringify(this.messages.slice(-3)).slice(0, 800)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => this.socket.once('close', r));
    this.socket.close();
    await closed;
  }
}
