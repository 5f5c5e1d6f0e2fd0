// The Lockbox console: signing in and out, the live connection, and the
// routes (#/ requests, #/requests/<id>, #/history, #/audit, #/admin).

import { initAdmin, resetAdmin, showAdmin } from "./admin.js";
import { LiveConnection } from "./api.js";
import { app, canReadAudit, clearErrors, gql, isAdmin, showError } from "./app.js";
import { initAudit, resetAudit, showAudit } from "./audit.js";
import { $, el, replace, ROLE_WORDS, tickCountdowns } from "./dom.js";
import { initHistory, onHistoryUpdate, resetHistory, showHistory } from "./history.js";
import { ME, REQUEST_UPDATES } from "./queries.js";
import {
  leaveRequest, onCountdownEnded, onRequestUpdate, onResumed, renderFeedStatus, resetRequests,
  showOverview, showRequest,
} from "./requests.js";

const TOKEN_KEY = "lockbox.token";
const VIEWS = ["signin", "requests", "request", "history", "audit", "admin", "unavailable"];

// ---- signing in and out ---------------------------------------------------------------------

async function signIn(token) {
  signOutQuietly();
  app.token = token;
  const button = $("signin-submit");
  button.disabled = true;
  $("signin-status").textContent = "Signing in…";
  try {
    app.me = (await gql(ME)).me;
  } catch (error) {
    app.token = null;
    if (error.code === "UNAUTHENTICATED") sessionStorage.removeItem(TOKEN_KEY);
    $("signin-status").textContent = "";
    showError("Sign-in failed", error, $("signin-error"));
    showView("signin");
    return;
  } finally {
    button.disabled = false;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("signin-status").textContent = "";
  $("signin-error").hidden = true;
  $("token").value = "";
  renderSession();
  app.live = new LiveConnection({ token, onStatus: onLiveStatus }).start();
  app.live.subscribe("updates", REQUEST_UPDATES, () => ({}), {
    next: (data) => {
      onRequestUpdate(data.accessRequestUpdates);
      onHistoryUpdate();
    },
    error: (error) => showError("Live request updates", error),
  });
  route();
}

/** Forget everything about the session, without touching the page's errors. */
function signOutQuietly() {
  if (app.live) app.live.close();
  app.live = null;
  app.token = null;
  app.me = null;
  app.liveState = { state: "offline" };
  resetRequests();
  resetHistory();
  resetAudit();
  resetAdmin();
  $("session").hidden = true;
  $("nav").hidden = true;
  $("lockbox-off").hidden = true;
  $("banner").hidden = true;
}

function forget() {
  signOutQuietly();
  for (const key of Object.keys(sessionStorage)) if (key.startsWith("lockbox.")) sessionStorage.removeItem(key);
  clearErrors();
  $("notice").hidden = true;
  $("token").value = "";
  showView("signin");
  $("token").focus();
}

app.onRefused = (error) => {
  signOutQuietly();
  sessionStorage.removeItem(TOKEN_KEY);
  showError("Signed out: the server refused the token", error, $("signin-error"));
  showView("signin");
};

function renderSession() {
  const me = app.me;
  replace($("who"), el("strong", {}, me.name), ` · ${ROLE_WORDS[me.role] || me.role}`, me.tenant ? ` · ${me.tenant.name}` : "");
  $("who").title = me.scopes.length ? `Scopes: ${me.scopes.join(", ")}` : "";
  $("session").hidden = false;
  $("nav").hidden = false;
  $("nav-audit").hidden = !canReadAudit();
  $("nav-admin").hidden = !isAdmin();
  renderTenant(me.tenant);
}

function renderTenant(tenant) {
  if (app.me && tenant) app.me.tenant = { ...app.me.tenant, lockboxEnabled: tenant.lockboxEnabled };
  const off = Boolean(tenant && !tenant.lockboxEnabled);
  $("lockbox-off").hidden = !off;
  if (off) $("lockbox-off-text").textContent = `Lockbox is off for ${tenant.name}: engineers' requests are approved at once, without a decision.`;
}

// ---- the live connection ------------------------------------------------------------------

function onLiveStatus(status) {
  app.liveState = status;
  renderLive();
  renderFeedStatus();
  if (status.state === "live" && status.resumed) {
    onResumed();
    onHistoryUpdate();
  }
  if (status.state === "refused") app.onRefused({ code: "UNAUTHENTICATED", words: "the live connection was refused (close 4403)" });
}

function renderLive() {
  const { state, retryAt, reason } = app.liveState;
  const pill = $("live");
  const banner = $("banner");
  pill.className = `live is-${state}`;
  if (state === "live") {
    pill.textContent = "Live";
    pill.title = "Live updates over WebSocket";
    banner.hidden = true;
  } else if (state === "lost") {
    const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    pill.textContent = "Connection lost";
    pill.title = reason || "";
    $("banner-text").textContent = `Live connection lost (${reason}). Reconnecting ${seconds ? `in ${seconds} s` : "now"}; live views resume where they stopped.`;
    banner.hidden = false;
  } else if (state === "connecting") {
    pill.textContent = "Connecting…";
    if (!banner.hidden) $("banner-text").textContent = "Reconnecting…";
  } else {
    pill.textContent = "Offline";
    banner.hidden = true;
  }
}

// ---- routes -----------------------------------------------------------------------------------

function showView(name) {
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.nav === (name === "request" ? "requests" : name)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function unavailable(text) {
  $("unavailable-text").textContent = text;
  showView("unavailable");
}

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part; // a malformed %-escape: take it as it is
  }
}

function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decoded);
  const params = new URLSearchParams(query || "");
  if (!app.me) {
    showView("signin");
    $("signin-next").hidden = !(parts[0] === "requests" && parts[1]);
    return;
  }
  if (parts[0] !== "requests" || !parts[1]) leaveRequest();
  const page = parts[0] || "requests";
  if (page === "requests" && parts[1]) {
    showView("request");
    showRequest(parts[1]);
  } else if (page === "requests") {
    showView("requests");
    showOverview();
  } else if (page === "history") {
    showView("history");
    showHistory(params);
  } else if (page === "audit") {
    if (!canReadAudit()) return unavailable("The audit log is for tenant admins and auditors.");
    showView("audit");
    showAudit(params);
  } else if (page === "admin") {
    if (!isAdmin()) return unavailable("Administration is for tenant admins.");
    showView("admin");
    showAdmin();
  } else {
    unavailable(`There is no page “${path}”.`);
  }
  window.scrollTo(0, 0);
  return undefined;
}

// ---- wiring -------------------------------------------------------------------------------------

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) signIn(token);
});
$("forget").addEventListener("click", forget);
$("banner-retry").addEventListener("click", () => { if (app.live) app.live.reconnectNow(); });
window.addEventListener("hashchange", route);
initHistory();
initAudit();
initAdmin({ onTenant: renderTenant });

setInterval(() => {
  if (tickCountdowns().length) onCountdownEnded();
  if (app.liveState.state === "lost") renderLive();
}, 1000);

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
else route();
document.documentElement.classList.add("ready");
