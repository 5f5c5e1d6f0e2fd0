// History: every request the signed-in principal can see, newest first,
// filtered by status, paged (#/history?status=DENIED&page=2).

import { gql, showError } from "./app.js";
import { $, el, fmtDuration, replace, requestHref, statusBadge, STATUS_WORDS, timeEl } from "./dom.js";
import { NewestFirst, WALK_SIZE } from "./paging.js";
import { REQUEST_CURSORS, REQUEST_PAGE } from "./queries.js";

const PAGE_SIZE = 25;
const state = { status: null, page: 0, pager: null, gen: 0, refreshTimer: null };

function pagerFor(status) {
  const variables = status ? { status: [status] } : {};
  return new NewestFirst({
    pageSize: PAGE_SIZE,
    cursors: async (after) => (await gql(REQUEST_CURSORS, { ...variables, first: WALK_SIZE, after })).page,
    page: async (first, after) => (await gql(REQUEST_PAGE, { ...variables, first, after })).page.edges,
  });
}

export function historyHash(status, page) {
  const params = new URLSearchParams();
  if (status) params.set("status", status);
  if (page > 0) params.set("page", String(page + 1));
  const query = params.toString();
  return `#/history${query ? `?${query}` : ""}`;
}

export function initHistory() {
  const select = $("history-status");
  select.replaceChildren(el("option", { value: "" }, "All statuses"),
    ...Object.entries(STATUS_WORDS).map(([value, words]) => el("option", { value }, words)));
  select.addEventListener("change", () => { location.hash = historyHash(select.value, 0); });
  $("history-newer").addEventListener("click", () => { location.hash = historyHash(state.status, state.page - 1); });
  $("history-older").addEventListener("click", () => { location.hash = historyHash(state.status, state.page + 1); });
  $("history-refresh").addEventListener("click", () => refresh(true));
}

export function showHistory(params) {
  const status = STATUS_WORDS[params.get("status")] ? params.get("status") : "";
  const page = Math.max(0, (parseInt(params.get("page") || "1", 10) || 1) - 1);
  $("history-status").value = status;
  if (state.pager === null || status !== state.status) {
    state.pager = pagerFor(status);
    replace($("history-rows"));
    $("history-range").textContent = "Loading…";
  }
  state.status = status;
  state.page = page;
  refresh(false);
}

async function refresh(reindex) {
  const gen = ++state.gen;
  const pager = state.pager;
  $("history-refresh").disabled = true;
  try {
    if (reindex || pager.cursors === null) await pager.index();
    const result = await pager.load(state.page);
    if (gen !== state.gen) return;
    render(result, pager);
  } catch (error) {
    if (gen === state.gen) {
      showError("Loading the history", error);
      $("history-range").textContent = `Could not load the history: ${error.words || error.message}`;
    }
  } finally {
    if (gen === state.gen) $("history-refresh").disabled = false;
  }
}

function render(result, pager) {
  state.page = result.page;
  const label = state.status ? STATUS_WORDS[state.status] : null;
  const which = label ? ` with status “${label}”` : "";
  $("history-range").textContent = pager.total
    ? `Requests ${result.first}–${result.last} of ${pager.total}${which}, newest first`
    : label ? `No request${which}.` : "No requests yet.";
  $("history-page").textContent = `Page ${result.page + 1} of ${pager.pageCount}`;
  $("history-newer").disabled = result.page === 0;
  $("history-older").disabled = result.page >= pager.pageCount - 1;
  replace($("history-rows"), result.nodes.map(row));
}

function row(request) {
  const more = request.resources.length > 1 ? ` +${request.resources.length - 1} more` : "";
  return el("tr", { dataset: { requestId: request.id } },
    el("td", { dataset: { label: "Requested" } }, timeEl(request.createdAt)),
    el("td", { dataset: { label: "Status" } }, statusBadge(request.status)),
    el("td", { dataset: { label: "Ticket" } }, el("a", { href: requestHref(request.id) }, request.ticket.title)),
    el("td", { dataset: { label: "Engineer" } }, request.engineer.name),
    el("td", { dataset: { label: "Resources" }, class: "resource-cell" },
      el("code", { title: request.resources.join("\n") }, request.resources[0]), more),
    el("td", { dataset: { label: "Duration" } }, fmtDuration(request.durationSeconds)),
    el("td", { dataset: { label: "Decided by" } }, request.decidedBy ? request.decidedBy.name : request.decidedAt ? "Lockbox (off)" : "—"));
}

/** A request changed: the visible page is re-read shortly (updates come in bursts). */
export function onHistoryUpdate() {
  if ($("view-history").hidden || state.pager === null) return;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { if (!$("view-history").hidden) refresh(true); }, 1000);
}

export function resetHistory() {
  clearTimeout(state.refreshTimer);
  state.pager = null;
  state.status = null;
  state.page = 0;
  state.gen += 1;
  replace($("history-rows"));
}
