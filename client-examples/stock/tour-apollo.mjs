#!/usr/bin/env node
// A decider's tour of Lockbox with Apollo Client 4: list the pending
// requests, approve one, see Apollo's normalised cache update the list
// from the mutation's answer, then stream the request's activity.
//
//   LOCKBOX_URL=http://127.0.0.1:8000 LOCKBOX_TOKEN=<a decider's token> \
//     node tour-apollo.mjs REQUEST_ID [--link split|http] [--steps approve,watch] [--events N]
//
// --link split (default): HttpLink for queries and mutations, GraphQLWsLink
//   (graphql-ws) for subscriptions.
// --link http: HttpLink alone; the subscription goes over HTTP as a
//   multipart response, which Apollo's HttpLink asks for by itself.
// Prints one JSON object per step on stdout.

import { parseArgs } from "node:util";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";

globalThis.WebSocket ??= WebSocket; // see watch-apollo.mjs

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
    link: { type: "string", default: "split" },
    steps: { type: "string", default: "approve,watch" },
    events: { type: "string", default: "1" },
  },
});
const [requestId] = positionals;
const base = process.env.LOCKBOX_URL ?? "http://127.0.0.1:8000";
const headers = { authorization: `Bearer ${process.env.LOCKBOX_TOKEN}` };
const steps = values.steps.split(",");
const say = (step, fields) => console.log(JSON.stringify({ step, ...fields }));

const httpLink = new HttpLink({ uri: `${base}/graphql`, headers });
let wsClient = null;
let link = httpLink;
if (values.link === "split") {
  wsClient = createClient({
    url: `${base.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: headers,
  });
  link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(wsClient),
    httpLink,
  );
}
const client = new ApolloClient({ cache: new InMemoryCache(), link });

function done(status) {
  wsClient?.dispose();
  client.stop();
  process.exit(status);
}

function failed(error) {
  const first = error.errors?.[0] ?? error;
  console.error(`error: ${first.extensions?.code ?? "ERROR"}: ${first.message}`);
  done(1);
}

async function approve() {
  const { data } = await client.query({ query: PENDING });
  say("pending", { ids: data.pendingRequests.edges.map((edge) => edge.node.id) });

  const approved = await client.mutate({
    mutation: APPROVE,
    variables: { id: requestId, reason: "checked against the ticket" },
  });
  say("approve", approved.data.approveRequest);

  // No refetch: the list's entry is the same normalised AccessRequest object
  // the mutation's answer was written to.
  const key = client.cache.identify({ __typename: "AccessRequest", id: requestId });
  const cached = client.readQuery({ query: PENDING });
  const entry = cached.pendingRequests.edges.find((edge) => edge.node.id === requestId);
  say("cache", { key, status: entry?.node.status ?? null });
}

function watch(count) {
  return new Promise((resolve, reject) => {
    let seen = 0;
    const subscription = client
      .subscribe({ query: ACTIVITY, variables: { requestId } })
      .subscribe({
        next: ({ data, error }) => {
          if (error) return reject(error);
          say("event", data.engineerActivity);
          seen += 1;
          if (seen >= count) {
            subscription.unsubscribe();
            resolve();
          }
        },
        complete: () => reject(new Error(`the stream ended after ${seen} event(s)`)),
      });
  });
}

try {
  if (steps.includes("approve")) await approve();
  if (steps.includes("watch")) await watch(Number(values.events));
  done(0);
} catch (error) {
  failed(error);
}
