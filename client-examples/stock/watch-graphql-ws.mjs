#!/usr/bin/env node
// Watch a request's engineer activity with the stock `graphql-ws` client, and
// resume across server restarts without missing or repeating an event.
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=lbx_... \
//     node watch-graphql-ws.mjs REQUEST_ID [--after CURSOR] [--limit N]
//
// stdout: one JSON object per event. stderr: what the connection is doing.
//
// The resume recipe (the same in watch-apollo.mjs and watch-urql.mjs):
//   1. remember the cursor of every event as it is printed;
//   2. when the socket closes with 1012 (service restart), 1001/1006 (gone,
//      dropped), 1013 (try again later), or cannot connect at all, wait a
//      little (growing, with jitter) and subscribe again with
//      `after: <last cursor seen>`, never with the variables it started with.
// Lockbox replays every event after that cursor, then goes live, so nothing
// is missed or printed twice. graphql-ws's own retry is turned off
// (retryAttempts: 0) because it would re-send the original variables.

import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import WebSocket from "ws"; // Node 20 has no global WebSocket without a flag

const ACTIVITY = `
subscription Activity($requestId: ID!, $after: String) {
  engineerActivity(requestId: $requestId, after: $after) {
    id cursor at action resource allowed denialReason engineer { name }
  }
}`;

// Close codes after which the same subscription may work again.
const RETRY_CLOSE_CODES = new Set([1001, 1006, 1012, 1013]);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { after: { type: "string" }, limit: { type: "string" } },
});
const [requestId] = positionals;
const base = process.env.LOCKBOX_URL ?? "http://127.0.0.1:8000";
const token = process.env.LOCKBOX_TOKEN;
if (!requestId || !token) {
  console.error("usage: LOCKBOX_TOKEN=... node watch-graphql-ws.mjs REQUEST_ID [--after CURSOR] [--limit N]");
  process.exit(2);
}
const limit = values.limit ? Number(values.limit) : Infinity;

let lastCursor = values.after ?? null; // the resume point: the last event printed
let printed = 0;
let failures = 0; // consecutive failed attempts, for the back-off

const client = createClient({
  url: `${base.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0, // this script resumes itself, with the last cursor
  on: {
    connected: () => {
      failures = 0;
      console.error(`# connected, watching after ${lastCursor ?? "the beginning"}`);
    },
  },
});

function watch() {
  client.subscribe(
    { query: ACTIVITY, variables: { requestId, after: lastCursor } },
    {
      next: ({ data, errors }) => {
        if (errors?.length) return fail(errors);
        const event = data.engineerActivity;
        console.log(JSON.stringify({ ...event, engineer: event.engineer.name }));
        lastCursor = event.cursor;
        printed += 1;
        if (printed >= limit) finish(0);
      },
      error: (error) => {
        // A close event, or a socket error event when nothing accepted the connection.
        if (error?.type === "error") return retry(`could not connect: ${error.message}`);
        if (RETRY_CLOSE_CODES.has(error?.code)) return retry(`closed with ${error.code} ${error.reason}`);
        fail(error);
      },
      complete: () => finish(0), // the server ended the stream
    },
  );
}

function retry(why) {
  // 100 ms, doubling up to 2 s, with jitter so that many watchers do not
  // reconnect in step after a restart.
  const delay = Math.min(2000, 100 * 2 ** failures) * (0.5 + Math.random() / 2);
  failures += 1;
  console.error(`# ${why.trim()}; resuming after ${lastCursor ?? "the beginning"} in ${Math.round(delay)} ms`);
  setTimeout(watch, delay);
}

function fail(error) {
  const first = Array.isArray(error) ? error[0] : error;
  const code = first?.extensions?.code ?? first?.code ?? "ERROR";
  console.error(`error: ${code}: ${first?.message ?? first?.reason ?? String(first)}`);
  finish(1);
}

function finish(status) {
  if (process.exitCode !== undefined) return;
  client.dispose();
  process.exitCode = status;
  setImmediate(() => process.exit(status));
}

watch();
