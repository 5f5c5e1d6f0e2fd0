#!/usr/bin/env node
// A decider's tour of Lockbox with urql (@urql/core, no React): list the
// pending requests, approve one, then stream the request's activity.
// Queries and mutations go over HTTP (fetchExchange), the subscription over
// graphql-ws (subscriptionExchange).
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=<a decider's token> \
//     node tour-urql.mjs REQUEST_ID [--steps approve,watch] [--events N]
//
// Prints one JSON object per step on stdout.

import { parseArgs } from "node:util";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws"; // Node 20 has no global WebSocket without a flag
import { Client, cacheExchange, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { pipe, subscribe } from "wonka";

const PENDING = gql`
  query Pending {
    pendingRequests(first: 50) {
      edges { node { id status resources engineer { id name } } }
    }
  }
`;
const APPROVE = gql`
  mutation Approve($id: ID!, $reason: String) {
    approveRequest(id: $id, reason: $reason) { id status decisionReason }
  }
`;
const ACTIVITY = gql`
  subscription Activity($requestId: ID!) {
    engineerActivity(requestId: $requestId) {
      id cursor action resource allowed denialReason
    }
  }
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: "string", default: "approve,watch" },
    events: { type: "string", default: "1" },
  },
});
const [requestId] = positionals;
const base = process.env.LOCKBOX_URL ?? "http://127.0.0.1:8000";
const authorization = `Bearer ${process.env.LOCKBOX_TOKEN}`;
const steps = values.steps.split(",");
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const wsClient = createWsClient({
  url: `${base.replace(/^http/, "ws")}/graphql`,
  webSocketImpl: WebSocket,
  connectionParams: { authorization },
});
const client = new Client({
  url: `${base}/graphql`,
  fetchOptions: { headers: { authorization } },
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: wsClient.subscribe(request, sink) }),
      }),
    }),
  ],
});

function done(status) {
  wsClient.dispose();
  process.exit(status);
}

// urql resolves with `error` set instead of rejecting.
function checked({ data, error }) {
  if (error) throw error;
  return data;
}

async function approve() {
  const pending = checked(await client.query(PENDING, {}).toPromise());
  say("pending", { ids: pending.pendingRequests.edges.map((edge) => edge.node.id) });
  const approved = checked(
    await client.mutation(APPROVE, { id: requestId, reason: "checked against the ticket" }).toPromise(),
  );
  say("approve", approved.approveRequest);
}

function watch(count) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const { unsubscribe } = pipe(
      client.subscription(ACTIVITY, { requestId }),
      subscribe(({ data, error }) => {
        if (error) return reject(error);
        say("event", data.engineerActivity);
        seen += 1;
        if (seen >= count) {
          unsubscribe();
          resolve();
        }
      }),
    );
  });
}

try {
  if (steps.includes("approve")) await approve();
  if (steps.includes("watch")) await watch(Number(values.events));
  done(0);
} catch (error) {
  const first = error.graphQLErrors?.[0] ?? error;
  console.error(`error: ${first.extensions?.code ?? "ERROR"}: ${first.message}`);
  done(1);
}
