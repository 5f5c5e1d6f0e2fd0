// The audit log: the tenant's hash chain, newest first, paged (#/audit?page=2).

import { gql, showError } from "./app.js";
import { $, el, pairs, replace, requestHref, ROLE_WORDS, timeEl } from "./dom.js";
import { NewestFirst, WALK_SIZE } from "./paging.js";
import { AUDIT_CURSORS, AUDIT_PAGE } from "./queries.js";

const PAGE_SIZE = 50;
const state = { page: 0, pager: null, gen: 0 };

function newPager() {
  return new NewestFirst({
    pageSize: PAGE_SIZE,
    cursors: async (after) => (await gql(AUDIT_CURSORS, { first: WALK_SIZE, after })).page,
    page: async (first, after) => (await gql(AUDIT_PAGE, { first, after })).page.edges,
  });
}

const auditHash = (page) => (page > 0 ? `#/audit?page=${page + 1}` : "#/audit");

export function initAudit() {
  $("audit-newer").addEventListener("click", () => { location.hash = auditHash(state.page - 1); });
  $("audit-older").addEventListener("click", () => { location.hash = auditHash(state.page + 1); });
  $("audit-refresh").addEventListener("click", () => refresh(true));
}

export function showAudit(params) {
  state.page = Math.max(0, (parseInt(params.get("page") || "1", 10) || 1) - 1);
  const first = state.pager === null;
  if (first) {
    state.pager = newPager();
    $("audit-range").textContent = "Loading…";
  }
  // Coming back to the newest page re-reads the chain's end; other pages keep their place.
  refresh(first || state.page === 0);
}

async function refresh(reindex) {
  const gen = ++state.gen;
  const pager = state.pager;
  $("audit-refresh").disabled = true;
  try {
    if (reindex) await pager.index();
    const result = await pager.load(state.page);
    if (gen !== state.gen) return;
    render(result, pager);
  } catch (error) {
    if (gen === state.gen) {
      showError("Loading the audit log", error);
      $("audit-range").textContent = `Could not load the audit log: ${error.words || error.message}`;
    }
  } finally {
    if (gen === state.gen) $("audit-refresh").disabled = false;
  }
}

function render(result, pager) {
  state.page = result.page;
  $("audit-range").textContent = pager.total
    ? `Events ${result.first}–${result.last} of ${pager.total}, newest first`
    : "The audit log is empty.";
  $("audit-page").textContent = `Page ${result.page + 1} of ${pager.pageCount}`;
  $("audit-newer").disabled = result.page === 0;
  $("audit-older").disabled = result.page >= pager.pageCount - 1;
  replace($("audit-rows"), result.nodes.map(row));
}

function row(event) {
  const actor = event.actor ? [event.actor.name, el("span", { class: "muted" }, ` (${ROLE_WORDS[event.actor.role] || event.actor.role})`)] : el("span", { class: "muted" }, "Lockbox");
  const detail = event.detail === null || event.detail === undefined ? "" : pairs(event.detail);
  return el("tr", { dataset: { seq: String(event.seq) } },
    el("td", { dataset: { label: "#" }, class: "num" }, String(event.seq)),
    el("td", { dataset: { label: "When" } }, timeEl(event.at)),
    el("td", { dataset: { label: "Action" } }, el("strong", {}, event.action)),
    el("td", { dataset: { label: "Actor" } }, actor),
    el("td", { dataset: { label: "Request" } }, event.requestId
      ? el("a", { href: requestHref(event.requestId), title: event.requestId }, `${event.requestId.slice(0, 8)}…`)
      : el("span", { class: "muted" }, "—")),
    el("td", { dataset: { label: "Detail" }, class: "detail-cell" }, detail),
    el("td", { dataset: { label: "Hash" } }, el("code", { class: "hash", title: `hash ${event.hash}\nprevious ${event.prevHash || "(none: first event)"}` }, event.hash.slice(0, 12))));
}

export function resetAudit() {
  state.pager = null;
  state.page = 0;
  state.gen += 1;
  replace($("audit-rows"));
}
