#!/usr/bin/env node
// Watch a request's engineer activity with urql (@urql/core, no React):
// fetchExchange for queries and mutations, subscriptionExchange over
// graphql-ws for subscriptions, and a resume across server restarts that
// neither misses nor repeats an event.
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=lbx_... \
//     node watch-urql.mjs REQUEST_ID [--after CURSOR] [--limit N]
//
// stdout: one JSON object per event. stderr: what the connection is doing.
//
// The resume recipe (see ../README.md): remember the cursor of each event;
// when the socket closes with 1012 (service restart), 1001/1006/1013, or
// cannot connect, subscribe again after a short, growing delay with
// `after: <last cursor seen>`. graphql-ws's own retry stays off because it
// would re-send the variables the subscription started with.

import { parseArgs } from "node:util";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws"; // Node 20 has no global WebSocket without a flag
import { Client, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { pipe, subscribe } from "wonka";

const ACTIVITY = gql`
  subscription Activity($requestId: ID!, $after: String) {
    engineerActivity(requestId: $requestId, after: $after) {
      id cursor at action resource allowed denialReason engineer { id name }
    }
  }
`;

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
  console.error("usage: LOCKBOX_TOKEN=... node watch-urql.mjs REQUEST_ID [--after CURSOR] [--limit N]");
  process.exit(2);
}
const limit = values.limit ? Number(values.limit) : Infinity;

let lastCursor = values.after ?? null; // the resume point: the last event printed
let printed = 0;
let failures = 0; // consecutive failed attempts, for the back-off
// What the socket last did: urql reports a dropped socket as a network
// error, so the close code is taken from graphql-ws's own events.
let transport = null;

const wsClient = createWsClient({
  url: `${base.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0, // this script resumes itself, with the last cursor
  on: {
    connected: () => {
      transport = null;
      failures = 0;
      console.error(`# connected, watching after ${lastCursor ?? "the beginning"}`);
    },
    error: (event) => (transport = { retry: true, why: `could not connect: ${event.message}` }),
    closed: (event) => {
      transport ??= {
        retry: RETRY_CLOSE_CODES.has(event.code),
        why: `closed with ${event.code} ${event.reason ?? ""}`,
      };
    },
  },
});

const client = new Client({
  url: `${base}/graphql`,
  fetchOptions: { headers: { authorization: `Bearer ${token}` } },
  exchanges: [
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(request, sink) }),
      }),
    }),
  ],
});

let current = null; // the running subscription, replaced on each resume

function watch() {
  transport = null;
  current = pipe(
    client.subscription(ACTIVITY, { requestId, after: lastCursor }),
    subscribe(({ data, error }) => {
      if (error) {
        current?.unsubscribe();
        if (transport?.retry) return retry(transport.why);
        return fail(error, transport?.why);
      }
      const event = data.engineerActivity;
      console.log(JSON.stringify({ ...event, engineer: event.engineer.name }));
      lastCursor = event.cursor;
      printed += 1;
      if (printed >= limit) finish(0);
    }),
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

function fail(error, why) {
  // `why` is set when the socket failed: a close code says more than the
  // client's generic network error.
  const first = error.graphQLErrors?.[0] ?? error;
  console.error(`error: ${why ?? `${first.extensions?.code ?? "ERROR"}: ${first.message}`}`);
  finish(1);
}

function finish(status) {
  if (process.exitCode !== undefined) return;
  current?.unsubscribe();
  wsClient.dispose();
  process.exitCode = status;
  setImmediate(() => process.exit(status));
}

watch();
