#!/usr/bin/env node
// A decider's tour of Lockbox with subscriptions-transport-ws, the client of
// the legacy `graphql-ws` WebSocket sub-protocol (Apollo's WebSocketLink and
// older GraphQL tools speak it): list the pending requests, approve one, and
// stream the request's activity, all three over the one socket.
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=<a decider's token> \
//     node tour-subscriptions-transport-ws.mjs REQUEST_ID [--steps approve,watch] [--events N]
//
// Prints one JSON object per step on stdout.

import { parseArgs } from "node:util";
import transport from "subscriptions-transport-ws";
import WebSocket from "ws"; // Node 20 has no global WebSocket without a flag

const { SubscriptionClient } = transport;

const PENDING = `
  query Pending {
    pendingRequests(first: 50) { edges { node { id status resources engineer { id name } } } }
  }`;
const APPROVE = `
  mutation Approve($id: ID!, $reason: String) {
    approveRequest(id: $id, reason: $reason) { id status decisionReason }
  }`;
const ACTIVITY = `
  subscription Activity($requestId: ID!) {
    engineerActivity(requestId: $requestId) { id cursor action resource allowed denialReason }
  }`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: "string", default: "approve,watch" },
    events: { type: "string", default: "1" },
  },
});
const [requestId] = positionals;
const base = process.env.LOCKBOX_URL ?? "http://127.0.0.1:8000";
const steps = values.steps.split(",");
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const client = new SubscriptionClient(
  `${base.replace(/^http/, "ws")}/graphql`,
  { connectionParams: { authorization: `Bearer ${process.env.LOCKBOX_TOKEN}` } },
  WebSocket,
);
// A refused token arrives as `connection_error`, outside any operation.
client.onError((error) => failed(error));

// Each operation, query and mutation included, is a `start` message whose
// results arrive as `data` messages; `count` of them, then it resolves.
function run(query, variables, count, each) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const subscription = client.request({ query, variables }).subscribe({
      next: (result) => {
        if (result.errors?.length) return reject(result.errors);
        each(result.data);
        seen += 1;
        if (seen >= count) {
          subscription?.unsubscribe();
          resolve();
        }
      },
      error: reject,
      complete: () => (seen >= count ? resolve() : reject(new Error(`ended after ${seen} result(s)`))),
    });
  });
}

function failed(error) {
  const first = Array.isArray(error) ? error[0] : error;
  console.error(`error: ${first?.extensions?.code ?? "ERROR"}: ${first?.message ?? JSON.stringify(first)}`);
  client.close();
  process.exit(1);
}

try {
  if (steps.includes("approve")) {
    await run(PENDING, {}, 1, (data) =>
      say("pending", { ids: data.pendingRequests.edges.map((edge) => edge.node.id) }),
    );
    await run(APPROVE, { id: requestId, reason: "checked against the ticket" }, 1, (data) =>
      say("approve", data.approveRequest),
    );
  }
  if (steps.includes("watch")) {
    await run(ACTIVITY, { requestId }, Number(values.events), (data) =>
      say("event", data.engineerActivity),
    );
  }
  client.close();
  process.exit(0);
} catch (error) {
  failed(error);
}
