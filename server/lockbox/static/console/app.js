// The console's shared state: who is signed in, the live connection, errors.

import { gql as post } from "./api.js";
import { $, el } from "./dom.js";

export const app = {
  token: null,
  me: null,
  live: null,
  liveState: { state: "offline" },
  // Set by console.js: sign out with a reason (a refused token).
  onRefused: null,
};

/** A GraphQL call as the signed-in principal. A refused token signs out. */
export async function gql(query, variables) {
  const token = app.token;
  try {
    return await post(token, query, variables);
  } catch (error) {
    if (error.code === "UNAUTHENTICATED" && token === app.token && app.onRefused) app.onRefused(error);
    throw error;
  }
}

const MAX_ERRORS = 4;

/**
 * Show an API error in words. With `where`, inside that element (next to
 * the control that failed); otherwise in the page's error list.
 */
export function showError(context, error, where = null) {
  const code = error && error.code ? error.code : "ERROR";
  const words = error && error.words ? error.words : String((error && error.message) || error);
  if (where) {
    where.replaceChildren(el("span", { class: "code" }, code), " ", `${context}: ${words}`);
    where.hidden = false;
    return;
  }
  const list = $("errors");
  const box = el("div", { class: "error", role: "alert" },
    el("span", { class: "code" }, code),
    el("span", { class: "msg" }, `${context}: ${words}`),
    el("button", { type: "button", class: "icon", "aria-label": "Dismiss", title: "Dismiss", on: { click: () => box.remove() } }, "×"));
  list.prepend(box);
  while (list.children.length > MAX_ERRORS) list.lastChild.remove();
}

export function clearErrors() {
  $("errors").replaceChildren();
}

let noticeTimer = null;
/** A short, polite confirmation that something happened. */
export function notice(text) {
  const node = $("notice");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { node.hidden = true; }, 8000);
}

// ---- what the signed-in principal may do ----------------------------------------

const within = (path, root) => path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);

/**
 * Mirrors the server's rule (contract section 5): a TENANT_ADMIN of the
 * request's tenant, or an APPROVER whose scopes cover every resource,
 * never for one's own request. The server decides; this only hides buttons
 * that would be refused.
 */
export function canDecide(request) {
  const me = app.me;
  if (!me || !me.tenant || !request || !request.tenant || request.tenant.id !== me.tenant.id) return false;
  if (request.engineer && request.engineer.id === me.id) return false;
  if (me.role === "TENANT_ADMIN") return true;
  if (me.role !== "APPROVER") return false;
  return request.resources.every((path) => me.scopes.some((scope) => within(path, scope)));
}

export const isAdmin = () => Boolean(app.me && app.me.role === "TENANT_ADMIN" && app.me.tenant);
export const canReadAudit = () => Boolean(app.me && app.me.tenant && ["TENANT_ADMIN", "AUDITOR"].includes(app.me.role));

/** Every page of a first/after connection, 200 at a time. */
export async function walk(query, variables, pick) {
  const nodes = [];
  let after = null;
  for (;;) {
    const connection = pick(await gql(query, { ...variables, first: 200, after }));
    for (const edge of connection.edges) nodes.push(edge.node);
    if (!connection.pageInfo.hasNextPage || !connection.edges.length) return nodes;
    after = connection.pageInfo.endCursor;
  }
}
