// Requests: the overview (pending decisions, open access windows) and one
// request's page (#/requests/<id>) with its decision and live activity.

import { app, canDecide, gql, notice, showError, walk } from "./app.js";
import {
  $, countdown, el, fact, fmtClock, fmtDuration, fmtTime, json, ms, reconcile, replace,
  requestHref, statusBadge, timeEl,
} from "./dom.js";
import { ACTIVITY, DECIDE, EMERGENCY, ONE_REQUEST, REQUESTS, REVIEW } from "./queries.js";

// Reasons being typed, by request id and status (an approval's reason is
// not offered again as the revocation's), so a re-render keeps them.
const reasons = new Map();
const reasonKey = (request) => `${request.id}/${request.status}`;

// ---- deciding ---------------------------------------------------------------------------

const VERBS = {
  approve: { label: "Approve", done: "approved", cls: "approve", field: "approveRequest" },
  deny: { label: "Deny", done: "denied", cls: "deny", field: "denyRequest" },
  revoke: { label: "Revoke access", done: "revoked", cls: "danger", field: "revokeAccess" },
};

/** What the approvals so far grant: the shortest duration, the last narrowed resources. */
function grantSoFar(request) {
  let seconds = request.durationSeconds;
  let resources = request.resources;
  for (const approval of request.approvals || []) {
    if (approval.durationSeconds) seconds = Math.min(seconds, approval.durationSeconds);
    if (approval.resources) resources = approval.resources;
  }
  return { seconds, resources };
}

/**
 * "Grant less…": a shorter duration and narrower resources (one path per
 * line, each within what is granted so far). Sent only where changed.
 */
function narrowing(request) {
  const grant = grantSoFar(request);
  const duration = el("input", {
    type: "number", min: "1", max: String(grant.seconds), step: "1", inputmode: "numeric",
    name: "durationSeconds", value: String(grant.seconds),
    "aria-label": `Granted duration in seconds for request ${request.id}`,
  });
  const resources = el("textarea", {
    name: "resources", rows: String(Math.min(6, grant.resources.length + 1)), spellcheck: "false",
    "aria-label": `Granted resources for request ${request.id}, one per line`,
  });
  resources.value = grant.resources.join("\n");
  const box = el("details", { class: "narrow" },
    el("summary", {}, "Grant less…"),
    el("label", {}, "Duration (seconds, at most ", fmtDuration(grant.seconds), ")", duration),
    el("label", {}, "Resources (one per line, each within one asked for)", resources));
  box.read = () => {
    const seconds = Number(duration.value);
    const paths = resources.value.split("\n").map((line) => line.trim()).filter(Boolean);
    const same = paths.length === grant.resources.length && paths.every((p, i) => p === grant.resources[i]);
    return {
      durationSeconds: Number.isFinite(seconds) && seconds !== grant.seconds ? seconds : null,
      resources: same ? null : paths,
    };
  };
  return box;
}

/** Approvals so far, e.g. "1 of 2 approvals: contoso-admin (10 min)". */
function approvalsLine(request) {
  const approvals = request.approvals || [];
  // One approval is the decision itself, shown as such: list a quorum only.
  if (request.requiredApprovals <= 1) return "";
  const names = approvals.map((a) => {
    const narrowed = [a.durationSeconds ? fmtDuration(a.durationSeconds) : "", a.resources ? a.resources.join(", ") : ""].filter(Boolean);
    return el("li", {}, el("strong", {}, a.approver.name), " at ", timeEl(a.at),
      narrowed.length ? ` · granted ${narrowed.join(" on ")}` : "",
      a.reason ? el("span", {}, " — ", el("q", {}, a.reason)) : "");
  });
  return el("div", { class: "approvals" },
    el("p", { class: "approvals-count" }, `${approvals.length} of ${request.requiredApprovals} approvals`),
    names.length ? el("ul", {}, names) : "");
}

/** The reason box and the buttons for `verbs`; errors show beside them. */
function decisionControls(request, verbs) {
  const reason = el("input", {
    type: "text",
    class: "reason",
    name: "reason",
    maxlength: "2000",
    placeholder: verbs.includes("revoke") ? "Reason for revoking (optional)" : "Reason (optional)",
    "aria-label": `Reason for request ${request.id}`,
    value: reasons.get(reasonKey(request)) || "",
    on: { input: (event) => reasons.set(reasonKey(request), event.target.value) },
  });
  const problem = el("p", { class: "inline-error", role: "alert", hidden: true });
  const narrow = verbs.includes("approve") ? narrowing(request) : null;
  const buttons = verbs.map((verb) => el("button", {
    type: "button",
    class: VERBS[verb].cls,
    dataset: { action: verb },
    on: { click: (event) => decide(verb, request, reason, event.currentTarget.parentElement, problem, narrow) },
  }, VERBS[verb].label));
  return el("div", { class: "decide" }, el("div", { class: "decide-row" }, reason, ...buttons), narrow, problem);
}

async function decide(verb, request, reasonInput, row, problem, narrow) {
  const { field } = VERBS[verb];
  const buttons = [...row.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  problem.hidden = true;
  const reason = reasonInput.value.trim();
  const extra = verb === "approve" && narrow ? narrow.read() : {};
  try {
    const updated = (await gql(DECIDE[verb], { id: request.id, reason: reason || null, ...extra }))[field];
    reasons.delete(reasonKey(request));
    const done = verb === "approve" && updated.status === "PENDING"
      ? `approved by you (${updated.approvals.length} of ${updated.requiredApprovals} approvals)`
      : VERBS[verb].done;
    notice(`Request “${updated.ticket.title}” (${updated.id}) ${done}.`);
    onRequestUpdate(updated);
  } catch (error) {
    showError(`Could not ${verb === "revoke" ? "revoke" : verb} request ${request.id}`, error, problem);
    for (const button of buttons) button.disabled = false;
  }
}

function readOnlyNote(request) {
  const me = app.me;
  const why = me && me.role === "APPROVER" ? "your scopes do not cover every resource of this request" : "your role cannot decide requests";
  return el("p", { class: "read-only" }, `Read only: ${why}.`);
}

// ---- pieces shared by cards and the request page --------------------------------------------

function resourceList(request, paths = request.resources) {
  return el("ul", { class: "resources" }, paths.map((path) => el("li", {}, el("code", {}, path))));
}

/** Where the approval granted less than was asked, what it granted. */
function grantedList(request) {
  const granted = request.grantedResources;
  if (!granted || granted.join("\n") === request.resources.join("\n")) return "";
  return el("div", { class: "granted" }, el("p", { class: "muted" }, "Granted (narrowed by the approvers):"),
    resourceList(request, granted));
}

function justification(request) {
  return el("blockquote", { class: "justification" }, request.justification);
}

function who(request) {
  const engineer = request.engineer;
  return [el("strong", {}, engineer.name), engineer.email ? el("span", { class: "muted" }, ` <${engineer.email}>`) : ""];
}

function decidedLine(request) {
  if (!request.decidedAt) return "";
  const by = request.decidedBy ? request.decidedBy.name
    : request.emergency ? "Lockbox (emergency access)" : "Lockbox (lockbox off)";
  return el("p", { class: "decided" }, `Approved by ${by} at `, timeEl(request.decidedAt),
    request.decisionReason ? el("span", {}, " — ", el("q", {}, request.decisionReason)) : "");
}

function card(request, kind) {
  const decidable = canDecide(request);
  const head = el("div", { class: "card-head" },
    el("h3", {}, el("a", { href: requestHref(request.id) }, request.ticket.title)),
    request.emergency ? el("span", { class: "status status-emergency" }, "Emergency") : "",
    statusBadge(request.status));
  const meta = el("p", { class: "meta" }, who(request), ` · ${request.tenant.name} · asks for ${fmtDuration(request.durationSeconds)}`);
  const parts = [head, meta, resourceList(request), justification(request)];
  if (kind === "pending") {
    parts.push(el("p", { class: "deadline" }, "Decide before ", timeEl(request.expiresAt), " · ",
      countdown(request.expiresAt, { after: " left", ended: "deadline passed" })));
    parts.push(approvalsLine(request));
    parts.push(decidable ? decisionControls(request, ["approve", "deny"]) : readOnlyNote(request));
  } else if (kind === "emergency") {
    parts.push(el("p", { class: "window" }, "Opened at ", timeEl(request.accessStartsAt), request.status === "APPROVED"
      ? [" · ", countdown(request.accessEndsAt, { before: "ends in ", ended: "window closed" })]
      : ` · now ${request.status.toLowerCase()}`));
    parts.push(decidable ? reviewControls(request) : readOnlyNote(request));
  } else {
    parts.push(grantedList(request));
    parts.push(decidedLine(request));
    parts.push(el("p", { class: "window" }, "Access open until ", timeEl(request.accessEndsAt), " · ",
      countdown(request.accessEndsAt, { before: "ends in ", ended: "window closed" })));
    parts.push(decidable ? decisionControls(request, ["revoke"]) : readOnlyNote(request));
  }
  parts.push(el("p", { class: "card-foot" },
    el("a", { href: requestHref(request.id), class: "more" }, kind === "pending" ? "Details and activity" : "Live activity"),
    el("code", { class: "id" }, request.id)));
  return el("article", { class: ["card", kind], dataset: { requestId: request.id } }, parts);
}

// ---- the overview ------------------------------------------------------------------------

const overview = { pending: new Map(), open: new Map(), emergency: new Map(), loaded: false, loading: null };

async function loadOverview() {
  const run = (overview.loading = Promise.all([
    walk(REQUESTS, { status: ["PENDING"] }, (data) => data.accessRequests),
    walk(REQUESTS, { status: ["APPROVED"] }, (data) => data.accessRequests),
    walk(EMERGENCY, {}, (data) => data.emergencyAccessToReview),
  ]));
  try {
    const [pending, open, emergency] = await run;
    if (run !== overview.loading) return;
    overview.pending = new Map(pending.map((r) => [r.id, r]));
    overview.open = new Map(open.map((r) => [r.id, r]));
    overview.emergency = new Map(emergency.map((r) => [r.id, r]));
    overview.loaded = true;
    renderOverview();
  } catch (error) {
    if (run === overview.loading) showError("Loading requests", error);
  }
}

function renderOverview() {
  if ($("view-requests").hidden) return;
  const pending = [...overview.pending.values()].sort((a, b) => ms(a.expiresAt) - ms(b.expiresAt));
  const open = [...overview.open.values()].sort((a, b) => ms(a.accessEndsAt) - ms(b.accessEndsAt));
  $("pending-count").textContent = overview.loaded ? String(pending.length) : "…";
  $("open-count").textContent = overview.loaded ? String(open.length) : "…";
  if (!overview.loaded) return;
  reconcile($("pending-list"), pending, (r) => r.id, (r) => card(r, "pending"), "Nothing is waiting for a decision.");
  reconcile($("open-list"), open, (r) => r.id, (r) => card(r, "open"), "No access window is open.");
  // Break-glass access, set apart above everything else until reviewed.
  const emergency = [...overview.emergency.values()].sort((a, b) => ms(a.createdAt) - ms(b.createdAt));
  $("emergency-count").textContent = String(emergency.length);
  $("emergency-panel").hidden = !emergency.length;
  reconcile($("emergency-list"), emergency, (r) => r.id, (r) => card(r, "emergency"), "Nothing to review.");
}

// ---- reviewing emergency access ------------------------------------------------------------

function reviewControls(request) {
  const note = el("input", {
    type: "text", class: "reason", name: "note", maxlength: "2000",
    placeholder: "Review note (optional)", "aria-label": `Review note for request ${request.id}`,
  });
  const problem = el("p", { class: "inline-error", role: "alert", hidden: true });
  const button = (accepted, label, cls) => el("button", {
    type: "button", class: cls, dataset: { action: accepted ? "accept" : "reject" },
    on: { click: (event) => review(request, accepted, note, event.currentTarget.parentElement, problem) },
  }, label);
  return el("div", { class: "decide" }, el("div", { class: "decide-row" }, note,
    button(true, "Accept", "approve"),
    button(false, request.status === "APPROVED" ? "Not accepted: revoke" : "Not accepted", "danger")), problem);
}

async function review(request, accepted, noteInput, row, problem) {
  const buttons = [...row.querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  problem.hidden = true;
  const note = noteInput.value.trim();
  try {
    const updated = (await gql(REVIEW, { id: request.id, accepted, note: note || null })).reviewEmergencyAccess;
    notice(`Emergency access ${updated.id} reviewed: ${accepted ? "accepted" : "not accepted"}${updated.status === "REVOKED" ? ", access revoked" : ""}.`);
    onRequestUpdate(updated);
  } catch (error) {
    showError(`Could not review request ${request.id}`, error, problem);
    for (const button of buttons) button.disabled = false;
  }
}

export function showOverview() {
  const role = app.me.role;
  const note = role === "APPROVER"
    ? `You decide requests whose resources all lie within: ${app.me.scopes.join(", ") || "(no scopes)"}.`
    : role === "TENANT_ADMIN" ? "" : "Read only: you see requests and their activity but cannot decide them.";
  replace($("requests-note"), note);
  $("requests-note").hidden = !note;
  renderOverview();
  loadOverview();
}

// ---- one request ------------------------------------------------------------------------------

const MAX_EVENTS = 1000;
const detail = { id: null, request: null, missing: false, feed: null, stop: null };

function newFeed() {
  return { seen: new Set(), after: null, total: 0, denied: 0, state: "connecting", problem: null };
}

export function showRequest(id) {
  if (detail.id !== id) {
    leaveRequest();
    detail.id = id;
    detail.request = null;
    detail.missing = false;
    detail.feed = newFeed();
    buildRequestPage();
    const feed = detail.feed;
    detail.stop = app.live.subscribe("activity", ACTIVITY, () => ({ requestId: id, after: feed.after }), {
      next: (data) => { if (detail.feed === feed) onActivity(data.engineerActivity); },
      error: (error) => {
        if (detail.feed !== feed) return;
        if (error.code === "RATE_LIMITED") feed.problem = `paused: ${error.words}`;
        else { feed.state = "ended"; feed.problem = error.words; }
        renderFeedStatus();
        if (error.code !== "NOT_FOUND") showError(`Live activity of request ${id}`, error);
      },
      complete: () => {
        if (detail.feed !== feed) return;
        feed.state = "ended";
        renderFeedStatus();
      },
    });
  }
  loadRequest(id);
}

export function leaveRequest() {
  if (detail.stop) detail.stop();
  detail.stop = null;
  detail.id = null;
  detail.feed = null;
}

async function loadRequest(id) {
  try {
    const request = (await gql(ONE_REQUEST, { id })).accessRequest;
    if (detail.id !== id) return;
    detail.request = request;
    detail.missing = request === null;
    renderRequest();
  } catch (error) {
    if (detail.id !== id) return;
    showError(`Loading request ${id}`, error);
    replace($("request-summary"), el("p", { class: "empty" }, `Request ${id} could not be loaded: ${error.words}`));
  }
}

function buildRequestPage() {
  replace($("request-title"), "Request ", el("code", {}, detail.id));
  replace($("request-summary"), el("p", { class: "empty" }, "Loading…"));
  replace($("request-decision"));
  $("request-decision").hidden = true;
  replace($("denied-list"));
  replace($("event-list"), el("li", { class: "empty" }, "No activity yet."));
  $("denied-count").textContent = "0";
  $("denied-panel").classList.remove("has-denied");
  $("denied-empty").hidden = false;
  renderFeedStatus();
}

function renderRequest() {
  const request = detail.request;
  if (detail.missing || !request) {
    replace($("request-title"), "Request not found");
    replace($("request-summary"), el("p", { class: "empty" },
      `Request ${detail.id} does not exist, or you are not allowed to see it.`));
    $("request-decision").hidden = true;
    return;
  }
  replace($("request-title"), request.ticket.title, " ", statusBadge(request.status));
  const facts = el("dl", { class: "facts" },
    fact("Request", el("code", { class: "id" }, request.id)),
    fact("Ticket", request.ticket.title, " ", el("code", { class: "id" }, request.ticket.id)),
    fact("Tenant", request.tenant.name),
    fact("Engineer", who(request)),
    fact("Asks for", fmtDuration(request.durationSeconds)),
    fact("Requested", timeEl(request.createdAt)),
    fact("Decide before", timeEl(request.expiresAt),
      request.status === "PENDING" ? [" · ", countdown(request.expiresAt, { after: " left", ended: "deadline passed" })] : ""),
    fact("Resources", resourceList(request)),
    request.grantedResources ? fact("Granted", resourceList(request, request.grantedResources)) : "",
    fact("Approvals needed", String(request.requiredApprovals)),
    request.emergency ? fact("Emergency", request.emergencyReview
      ? [`reviewed by ${request.emergencyReview.reviewer.name} at `, timeEl(request.emergencyReview.at), ": ",
        request.emergencyReview.accepted ? "accepted" : "not accepted",
        request.emergencyReview.note ? [" — ", el("q", {}, request.emergencyReview.note)] : ""]
      : "break-glass access, not reviewed yet") : "",
    fact("Justification", justification(request)));
  replace($("request-summary"), facts);
  renderDecision(request);
}

function renderDecision(request) {
  const box = $("request-decision");
  box.hidden = false;
  const decidable = canDecide(request);
  const by = request.decidedBy ? request.decidedBy.name : null;
  const reason = request.decisionReason ? el("p", { class: "reason-line" }, "Reason: ", el("q", {}, request.decisionReason)) : "";
  const lines = [el("h2", {}, "Decision")];
  switch (request.status) {
    case "PENDING":
      lines.push(el("p", {}, "Waiting for a decision. The request expires at ", timeEl(request.expiresAt), " · ",
        countdown(request.expiresAt, { after: " left", ended: "deadline passed" })));
      lines.push(approvalsLine(request));
      lines.push(decidable ? decisionControls(request, ["approve", "deny"]) : readOnlyNote(request));
      break;
    case "APPROVED":
      lines.push(el("p", {}, by ? `Approved by ${by} at `
        : request.emergency ? "Emergency access, opened at once at " : "Approved automatically (lockbox off) at ",
      timeEl(request.decidedAt), "."), reason);
      lines.push(el("p", { class: "window" }, "Access window: ", timeEl(request.accessStartsAt), " until ",
        timeEl(request.accessEndsAt), " · ", countdown(request.accessEndsAt, { before: "ends in ", ended: "window closed" })));
      lines.push(approvalsLine(request));
      if (request.emergency && !request.emergencyReview && decidable) lines.push(reviewControls(request));
      lines.push(decidable ? decisionControls(request, ["revoke"]) : readOnlyNote(request));
      break;
    case "DENIED":
      lines.push(el("p", {}, `Denied by ${by || "an approver"} at `, timeEl(request.decidedAt), "."), reason);
      break;
    case "REVOKED":
      lines.push(el("p", {}, by ? `Approved by ${by} at ` : "Approved automatically at ", timeEl(request.decidedAt),
        "; access revoked at ", timeEl(request.accessEndsAt), "."), reason);
      break;
    case "COMPLETED":
      lines.push(el("p", {}, by ? `Approved by ${by} at ` : "Approved automatically at ", timeEl(request.decidedAt),
        "; the access window closed at ", timeEl(request.accessEndsAt), "."), reason);
      break;
    case "EXPIRED":
      lines.push(el("p", {}, "Nobody decided before the deadline, ", timeEl(request.expiresAt), "."));
      break;
    case "CANCELED":
      lines.push(el("p", {}, "The engineer withdrew the request."));
      break;
    default:
      lines.push(el("p", {}, `Status: ${request.status}`));
  }
  replace(box, lines);
}

function eventItem(event) {
  const allowed = event.allowed;
  return el("li", { class: ["event", allowed ? "allowed" : "denied"], dataset: { cursor: event.cursor } },
    el("div", { class: "event-head" },
      el("span", { class: "verdict" }, allowed ? "Allowed" : "Denied"),
      el("strong", { class: "action" }, event.action),
      el("span", { class: "muted" }, event.engineer.name),
      el("time", { datetime: event.at, title: fmtTime(event.at) }, fmtClock(event.at))),
    el("div", { class: "resource" }, el("code", {}, event.resource)),
    allowed ? "" : el("div", { class: "reason-line" }, "Why denied: ", event.denialReason || "no reason given"),
    event.detail === null || event.detail === undefined ? "" : el("pre", { class: "detail" }, json(event.detail)));
}

function onActivity(event) {
  const feed = detail.feed;
  if (feed.seen.has(event.id)) return; // never twice, even across a reconnect
  feed.seen.add(event.id);
  feed.after = event.cursor;
  feed.total += 1;
  feed.state = "live";
  const list = $("event-list");
  if (feed.total === 1) list.replaceChildren();
  list.prepend(eventItem(event));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  if (!event.allowed) {
    feed.denied += 1;
    const denied = $("denied-list");
    denied.prepend(eventItem(event));
    while (denied.children.length > MAX_EVENTS) denied.lastChild.remove();
    $("denied-count").textContent = String(feed.denied);
    $("denied-panel").classList.add("has-denied");
    $("denied-empty").hidden = true;
  }
  renderFeedStatus();
}

export function renderFeedStatus() {
  const feed = detail.feed;
  const node = $("feed-status");
  if (!feed) return;
  const counts = `${feed.total} ${feed.total === 1 ? "event" : "events"}, ${feed.denied} denied`;
  let state;
  let text;
  if (feed.state === "ended") {
    state = "ended";
    text = `Stream ended${feed.problem ? `: ${feed.problem}` : ""} · ${counts}`;
  } else if (app.liveState.state === "connecting" && !(app.live && app.live.everAcked)) {
    state = "connecting";
    text = "Connecting…";
  } else if (app.liveState.state !== "live") {
    state = "lost";
    text = `Connection lost: resumes after the last event received · ${counts}`;
  } else {
    state = "live";
    text = `Live · ${counts}${feed.problem ? ` · ${feed.problem}` : ""}`;
  }
  node.className = `feed-status feed-${state}`;
  node.textContent = text;
}

// ---- live updates -----------------------------------------------------------------------------

/** A request changed (a live update, or the answer to our own decision). */
export function onRequestUpdate(request) {
  overview.pending.delete(request.id);
  overview.open.delete(request.id);
  overview.emergency.delete(request.id);
  if (request.status === "PENDING") overview.pending.set(request.id, request);
  if (request.status === "APPROVED") overview.open.set(request.id, request);
  if (request.emergency && !request.emergencyReview) overview.emergency.set(request.id, request);
  renderOverview();
  if (detail.id === request.id && !$("view-request").hidden) {
    detail.request = request;
    detail.missing = false;
    renderRequest();
  }
}

/** Back after a lost connection: what changed meanwhile is re-read. */
export function onResumed() {
  if (!$("view-requests").hidden) loadOverview();
  if (detail.id && !$("view-request").hidden) loadRequest(detail.id);
}

/** A countdown reached zero: re-read what it was about, once the server agrees. */
export function onCountdownEnded() {
  setTimeout(onResumed, 1500);
}

export function resetRequests() {
  leaveRequest();
  overview.pending.clear();
  overview.open.clear();
  overview.emergency.clear();
  overview.loaded = false;
  overview.loading = null;
  reasons.clear();
  $("emergency-panel").hidden = true;
  for (const id of ["emergency-list", "pending-list", "open-list", "event-list", "denied-list", "request-summary", "request-decision"]) replace($(id));
}

