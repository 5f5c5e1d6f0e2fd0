#!/usr/bin/env node
// A small Lockbox client using only Node built-ins: list pending requests,
// approve/deny/revoke one, or watch a request's engineer activity live.
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=lbx_... node watch_activity.mjs
//   node watch_activity.mjs --approve REQUEST_ID --reason "ticket checked"
//   node --experimental-websocket watch_activity.mjs --watch REQUEST_ID [--after CURSOR]
//
// Queries and mutations use the global fetch. --watch speaks the
// graphql-transport-ws protocol over the global WebSocket, which Node 20.10+
// provides behind --experimental-websocket (and Node 22+ by default). It
// reconnects with the last cursor it printed: no event is missed or repeated.

import { parseArgs } from "node:util";

const PENDING = `
query Pending($after: String) {
  pendingRequests(first: 100, after: $after) {
    edges { node {
      id status expiresAt justification resources
      tenant { name } ticket { title } engineer { name }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const decideMutation = (field) => `
mutation Decide($id: ID!, $reason: String) {
  ${field}(id: $id, reason: $reason) { id status decisionReason accessStartsAt accessEndsAt }
}`;

const ACTIVITY = `
subscription Activity($requestId: ID!, $after: String) {
  engineerActivity(requestId: $requestId, after: $after) {
    id cursor at resource action allowed denialReason detail engineer { name }
  }
}`;

// Close codes after which reconnecting cannot help (graphql-transport-ws).
const FATAL_CLOSE_CODES = { 4400: "bad request", 4403: "token refused", 4409: "duplicate id" };

class LockboxError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

function firstError(errors) {
  const error = errors[0] ?? {};
  return new LockboxError(error.extensions?.code ?? "ERROR", error.message ?? "unknown error");
}

const say = (line) => process.stdout.write(`${line}\n`);

async function graphql(options, query, variables = {}) {
  const response = await fetch(`${options.url}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${options.token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LockboxError(`HTTP ${response.status}`, text.slice(0, 200));
  }
  if (body.errors?.length) throw firstError(body.errors);
  return body.data;
}

async function listPending(options) {
  let after = null;
  let count = 0;
  for (;;) {
    const page = (await graphql(options, PENDING, { after })).pendingRequests;
    for (const { node: r } of page.edges) {
      count += 1;
      say(
        `${r.id}  ${r.status}  tenant=${r.tenant.name}  engineer=${r.engineer.name}  expires=${r.expiresAt}`,
      );
      say(`    ticket: ${r.ticket.title}`);
      say(`    why:    ${r.justification}`);
      for (const resource of r.resources) say(`    - ${resource}`);
    }
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  say(`${count} pending request(s)`);
}

async function decide(options, field, id) {
  const data = await graphql(options, decideMutation(field), { id, reason: options.reason ?? null });
  const r = data[field];
  say(`${r.id} is now ${r.status}${r.accessEndsAt ? ` (access until ${r.accessEndsAt})` : ""}`);
}

function formatEvent(event) {
  const verdict = event.allowed ? "ALLOWED" : "DENIED ";
  let line = `${event.at}  ${verdict}  ${event.engineer.name}  ${event.action}  ${event.resource}`;
  if (!event.allowed) line += `  reason=${event.denialReason ?? "?"}`;
  if (event.detail !== null && event.detail !== undefined) {
    line += `  detail=${JSON.stringify(event.detail)}`;
  }
  return `${line}  cursor=${event.cursor}`;
}

function wsUrl(httpUrl) {
  const url = new URL("/graphql", httpUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

// One connection: resolves with "done" (stream ended or limit reached) or
// "lost" (the socket dropped; the caller reconnects), rejects on fatal errors.
function connectOnce(options, state) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(options.url), "graphql-transport-ws");
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      fn(value);
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    };
    const send = (message) => ws.send(JSON.stringify(message));

    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
      send({ type: "connection_init", payload: { authorization: `Bearer ${options.token}` } });
    });
    ws.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data));
      switch (message.type) {
        case "ping":
          send({ type: "pong" });
          break;
        case "connection_ack":
          state.delay = 1000;
          say(`# watching ${options.watch}${state.after ? ` after ${state.after}` : ""}`);
          send({
            id: "activity",
            type: "subscribe",
            payload: { query: ACTIVITY, variables: { requestId: options.watch, after: state.after } },
          });
          break;
        case "next": {
          if (message.payload.errors?.length) return finish(reject, firstError(message.payload.errors));
          const activity = message.payload.data.engineerActivity;
          say(formatEvent(activity));
          state.after = activity.cursor;
          state.printed += 1;
          if (options.limit && state.printed >= options.limit) finish(resolve, "done");
          break;
        }
        case "error":
          finish(reject, firstError(message.payload));
          break;
        case "complete":
          say("# the server ended the stream");
          finish(resolve, "done");
          break;
      }
    });
    ws.addEventListener("close", (event) => {
      if (event.code in FATAL_CLOSE_CODES) {
        finish(reject, new LockboxError(`CLOSED ${event.code}`, FATAL_CLOSE_CODES[event.code]));
      } else {
        if (!settled) {
          say(`# connection lost (code ${event.code}); reconnecting in ${state.delay / 1000}s after ${state.after}`);
        }
        finish(resolve, "lost");
      }
    });
    ws.addEventListener("error", () => {
      // Node 20's WebSocket reports a failed connection with "error" and no
      // "close"; after a successful open a "close" event follows instead.
      if (opened || settled) return;
      say(`# cannot connect; retrying in ${state.delay / 1000}s`);
      finish(resolve, "lost");
    });
  });
}

async function watch(options) {
  if (typeof WebSocket === "undefined") {
    throw new LockboxError(
      "NO_WEBSOCKET",
      "this Node has no global WebSocket: run `node --experimental-websocket` (Node 20.10+) or Node 22+",
    );
  }
  const state = { after: options.after ?? null, printed: 0, delay: 1000 };
  for (;;) {
    if ((await connectOnce(options, state)) === "done") return;
    await new Promise((wake) => setTimeout(wake, state.delay));
    state.delay = Math.min(state.delay * 2, 30000);
  }
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: process.env.LOCKBOX_URL ?? "http://127.0.0.1:8000" },
      token: { type: "string", default: process.env.LOCKBOX_TOKEN },
      watch: { type: "string" },
      approve: { type: "string" },
      deny: { type: "string" },
      revoke: { type: "string" },
      reason: { type: "string" },
      after: { type: "string" },
      limit: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    say("usage: watch_activity.mjs [--url URL] [--token TOKEN] [--watch ID [--after CURSOR] [--limit N]]");
    say("                          [--approve ID | --deny ID | --revoke ID] [--reason TEXT]");
    process.exit(0);
  }
  if (!values.token) throw new LockboxError("USAGE", "a token is required: --token or LOCKBOX_TOKEN");
  const chosen = ["watch", "approve", "deny", "revoke"].filter((name) => values[name]);
  if (chosen.length > 1) throw new LockboxError("USAGE", `choose one of --${chosen.join(", --")}`);
  const limit = values.limit ? Number(values.limit) : null;
  return { ...values, url: values.url.replace(/\/+$/, ""), limit };
}

async function main() {
  const options = parseOptions();
  if (options.watch) await watch(options);
  else if (options.approve) await decide(options, "approveRequest", options.approve);
  else if (options.deny) await decide(options, "denyRequest", options.deny);
  else if (options.revoke) await decide(options, "revokeAccess", options.revoke);
  else await listPending(options);
}

main().catch((error) => {
  let text = `cannot reach the server: ${error.cause?.message ?? error.message}`;
  let status = 1;
  if (error instanceof LockboxError) text = error.message;
  if (error.code === "USAGE" || String(error.code).startsWith("ERR_PARSE_ARGS")) {
    text = error.message;
    status = 2;
  }
  process.stderr.write(`error: ${text}\n`);
  process.exit(status);
});
