// GraphQL over HTTP, and one graphql-transport-ws WebSocket that reconnects
// by itself (exponential backoff with jitter) and resubscribes every live
// operation, each with fresh variables (the activity feed passes its last cursor).

export class ApiError extends Error {
  constructor(code, message, extensions = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }

  /** The message in words, with the wait when the server asks for one. */
  get words() {
    const retry = this.extensions.retryAfterSeconds;
    return retry ? `${this.message} (try again in ${Math.ceil(retry)} s)` : this.message;
  }
}

export function errorFrom(errors) {
  const first = (Array.isArray(errors) ? errors[0] : errors) || {};
  const extensions = first.extensions || {};
  return new ApiError(extensions.code || "ERROR", first.message || "the server gave no reason", extensions);
}

const GRAPHQL_URL = () => new URL("graphql", location.href);

/** One GraphQL operation over HTTP POST; its `data`, or an ApiError. */
export async function gql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch(GRAPHQL_URL(), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError("NETWORK", `cannot reach the Lockbox server (${error.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP_${response.status}`, `the server answered ${response.status} ${response.statusText} without a GraphQL result`);
  }
  if (body.errors && body.errors.length) throw errorFrom(body.errors);
  if (!response.ok || !body.data) {
    throw new ApiError(`HTTP_${response.status}`, `the server answered ${response.status} ${response.statusText}`);
  }
  return body.data;
}

const PROTOCOL = "graphql-transport-ws";
const ACK_TIMEOUT_MS = 10000;
const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

/**
 * The live connection. `onStatus({state, retryAt, resumed, reason})` reports
 * "connecting", "live", "lost" (with retryAt) and "refused" (the token was
 * refused: no retry). Subscriptions registered with `subscribe` survive
 * reconnects: each is sent again after every connection_ack.
 */
export class LiveConnection {
  constructor({ token, onStatus }) {
    this.token = token;
    this.onStatus = onStatus;
    this.subs = new Map(); // key -> { query, variables(), handlers, opId, active }
    this.byOp = new Map(); // opId -> sub
    this.seq = 0;
    this.failures = 0;
    this.socket = null;
    this.acked = false;
    this.everAcked = false;
    this.stopped = false;
    this.retryTimer = null;
    this.ackTimer = null;
    this.onOnline = () => this.reconnectNow();
    window.addEventListener("online", this.onOnline);
  }

  start() {
    this.open();
    return this;
  }

  open() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    const url = GRAPHQL_URL();
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(url, PROTOCOL);
    } catch (error) {
      this.lost(`cannot open a WebSocket (${error.message})`);
      return;
    }
    this.socket = ws;
    this.acked = false;
    this.byOp.clear();
    for (const sub of this.subs.values()) sub.opId = null;
    this.onStatus({ state: "connecting" });
    ws.addEventListener("open", () => {
      if (ws !== this.socket) return;
      this.send({ type: "connection_init", payload: { authorization: `Bearer ${this.token}` } });
      this.ackTimer = setTimeout(() => {
        if (ws === this.socket && !this.acked) ws.close(4408, "no connection_ack");
      }, ACK_TIMEOUT_MS);
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.socket) return;
      clearTimeout(this.ackTimer);
      this.socket = null;
      this.acked = false;
      this.onClose(event);
    });
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  onMessage(message) {
    switch (message.type) {
      case "connection_ack": {
        clearTimeout(this.ackTimer);
        const resumed = this.everAcked;
        this.acked = true;
        this.everAcked = true;
        this.failures = 0;
        this.onStatus({ state: "live", resumed });
        for (const sub of this.subs.values()) if (sub.active) this.sendSubscribe(sub);
        break;
      }
      case "ping":
        this.send({ type: "pong" });
        break;
      case "next": {
        const sub = this.byOp.get(message.id);
        if (!sub) break;
        const payload = message.payload || {};
        if (payload.errors && payload.errors.length) sub.handlers.error?.(errorFrom(payload.errors));
        else sub.handlers.next(payload.data);
        break;
      }
      case "error": {
        const sub = this.byOp.get(message.id);
        if (!sub) break;
        this.byOp.delete(message.id);
        sub.opId = null;
        const error = errorFrom(message.payload);
        if (error.code === "RATE_LIMITED") {
          // Ask again once the server says we may; the feed's cursor makes it gapless.
          const wait = 1000 * (Number(error.extensions.retryAfterSeconds) || 1);
          setTimeout(() => { if (sub.active && this.acked && !sub.opId) this.sendSubscribe(sub); }, wait);
        } else {
          sub.active = false;
        }
        sub.handlers.error?.(error);
        break;
      }
      case "complete": {
        const sub = this.byOp.get(message.id);
        if (!sub) break;
        this.byOp.delete(message.id);
        sub.opId = null;
        sub.active = false;
        sub.handlers.complete?.();
        break;
      }
      default:
        break;
    }
  }

  onClose(event) {
    if (this.stopped) return;
    if (event.code === 4403) {
      this.stopped = true;
      this.onStatus({ state: "refused", reason: "the server refused the token" });
      return;
    }
    let wait = null;
    if (event.code === 4429) {
      const match = /retryAfterSeconds\D*(\d+(?:\.\d+)?)/.exec(event.reason || "");
      if (match) wait = Math.max(MIN_DELAY_MS, Number(match[1]) * 1000);
    }
    const reason = event.reason ? `${event.reason} (close ${event.code})` : `close ${event.code}`;
    this.lost(reason, wait);
  }

  lost(reason, wait = null) {
    this.failures += 1;
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (this.failures - 1));
    const delay = wait ?? Math.round(base * (0.75 + Math.random() * 0.5));
    const retryAt = Date.now() + delay;
    this.onStatus({ state: "lost", retryAt, reason });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Try at once (a button, or the browser saying it is online again). */
  reconnectNow() {
    if (this.stopped || this.socket) return;
    this.open();
  }

  /**
   * Keep `query` subscribed under `key` (a second call with the same key
   * replaces the first). `variables` is called at every (re)subscribe.
   * Answers `stop()`.
   */
  subscribe(key, query, variables, handlers) {
    this.unsubscribe(key);
    const sub = { key, query, variables, handlers, opId: null, active: true };
    this.subs.set(key, sub);
    if (this.acked) this.sendSubscribe(sub);
    return () => this.unsubscribe(key, sub);
  }

  sendSubscribe(sub) {
    const opId = `${sub.key}-${++this.seq}`;
    sub.opId = opId;
    this.byOp.set(opId, sub);
    this.send({ id: opId, type: "subscribe", payload: { query: sub.query, variables: sub.variables() } });
  }

  unsubscribe(key, only = null) {
    const sub = this.subs.get(key);
    if (!sub || (only && sub !== only)) return;
    this.subs.delete(key);
    sub.active = false;
    if (sub.opId) {
      this.byOp.delete(sub.opId);
      this.send({ id: sub.opId, type: "complete" });
      sub.opId = null;
    }
  }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.ackTimer);
    window.removeEventListener("online", this.onOnline);
    this.subs.clear();
    this.byOp.clear();
    const ws = this.socket;
    this.socket = null;
    if (ws) ws.close(1000, "signed out");
  }
}
