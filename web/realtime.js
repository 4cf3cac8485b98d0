// The WebSocket to GET /ws: authenticates with the first frame, hands each
// event to the app, and reconnects with backoff when the connection drops.

/** Close code for a revoked or expired access token. */
const CLOSE_UNAUTHORIZED = 4401;

/** Reconnect delays in milliseconds; the last one repeats. */
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, 15000];

export class Realtime {
  /**
   * Takes the app's callbacks. `token()` returns the current access token,
   * and `renew()` resolves to false when the session is over. `onReady()`
   * runs after each connection and after a gap in the events, so the app can
   * catch up. `onEvent(event)` receives every other event, and
   * `onStatus(status)` receives 'connecting', 'online' or 'reconnecting'.
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.socket = null;
    this.ready = false;
    this.stopped = true;
    this.attempt = 0;
    this.lastSeq = 0;
    this.retryTimer = null;
    this.onOnline = () => this.retryNow();
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    this.handlers.onStatus('connecting');
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    window.removeEventListener('online', this.onOnline);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000, 'signed out');
      this.socket = null;
    }
    this.ready = false;
  }

  /** Sends a frame when connected; frames such as typing notices are not worth queueing. */
  send(frame) {
    if (this.ready && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
    }
  }

  open() {
    const url = new URL('/ws', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    this.socket = socket;
    this.ready = false;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token: this.handlers.token() }));
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = (close) => this.closed(close.code);
  }

  receive(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (event.type === 'ready') {
      this.ready = true;
      this.attempt = 0;
      this.lastSeq = event.seq;
      this.handlers.onStatus('online');
      this.handlers.onReady();
      return;
    }
    // The server numbers the frames of each socket; a gap means lost events.
    const gap = event.seq !== this.lastSeq + 1;
    this.lastSeq = event.seq;
    this.handlers.onEvent(event);
    if (gap) this.handlers.onReady();
  }

  async closed(code) {
    this.socket = null;
    this.ready = false;
    if (this.stopped) return;
    this.handlers.onStatus('reconnecting');

    if (code === CLOSE_UNAUTHORIZED) {
      let renewed = null;
      try {
        renewed = await this.handlers.renew();
      } catch {
        // The server is unreachable: retry with backoff like any other drop.
      }
      if (renewed === false || this.stopped) return;
    }
    const base = RETRY_DELAYS[Math.min(this.attempt, RETRY_DELAYS.length - 1)];
    this.attempt += 1;
    // Jitter spreads out the reconnects of many clients after a restart.
    const delay = base * (0.75 + Math.random() * 0.5);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Reconnects at once when the browser reports that the network is back. */
  retryNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this.open();
  }
}
