// Administration (TENANT_ADMIN): lockbox on/off, the tenant's settings,
// and the recent mails and webhook deliveries.

import { gql, notice, showError } from "./app.js";
import { $, el, fmtDuration, replace, requestHref, timeEl } from "./dom.js";
import { NOTIFICATIONS, SET_ENABLED, TENANT, UPDATE_SETTINGS } from "./queries.js";

const DURATIONS = ["pendingRequestTtlSeconds", "defaultAccessSeconds", "maxAccessSeconds", "emergencyMaxSeconds"];
const FIELDS = [...DURATIONS, "notificationEmails", "requiredApprovals", "allowEmergencyAccess"];
const NOTIFICATIONS_PAGE = 20;

const state = { tenant: null, gen: 0, notificationsAfter: null, onTenant: null };

// ---- a confirmation that is a real dialog, not window.confirm ----------------------------

export function confirmDialog({ title, text, ok, danger = false }) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  const button = $("confirm-ok");
  button.textContent = ok;
  button.className = danger ? "danger" : "primary";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

// ---- the page ----------------------------------------------------------------------------

export function initAdmin({ onTenant }) {
  state.onTenant = onTenant;
  $("lockbox-toggle").addEventListener("click", toggleLockbox);
  $("settings-form").addEventListener("submit", (event) => { event.preventDefault(); saveSettings(); });
  $("settings-undo").addEventListener("click", () => { if (state.tenant) fillSettings(state.tenant.settings); });
  for (const name of DURATIONS) {
    $(`set-${name}`).addEventListener("input", () => durationHint(name));
  }
  $("notifications-more").addEventListener("click", () => loadNotifications(false));
}

export async function showAdmin() {
  const gen = ++state.gen;
  try {
    const tenant = (await gql(TENANT)).me.tenant;
    if (gen !== state.gen) return;
    setTenant(tenant, true);
  } catch (error) {
    if (gen === state.gen) showError("Loading the tenant's settings", error);
  }
  loadNotifications(true);
}

function setTenant(tenant, fill) {
  state.tenant = tenant;
  $("admin-tenant").textContent = tenant.name;
  replace($("admin-roots"), tenant.resourceRoots.map((root) => el("li", {}, el("code", {}, root))));
  const on = tenant.lockboxEnabled;
  const words = $("lockbox-state");
  words.className = on ? "lockbox-state on" : "lockbox-state off";
  replace(words, "Lockbox is ", el("strong", {}, on ? "on" : "off"), on
    ? ": every engineer request waits for a decision by one of your approvers."
    : ": engineers' requests are approved at once, without a decision (still recorded, streamed and audited).");
  const toggle = $("lockbox-toggle");
  toggle.textContent = on ? "Turn lockbox off…" : "Turn lockbox on…";
  toggle.className = on ? "danger" : "primary";
  toggle.disabled = false;
  if (fill) fillSettings(tenant.settings);
  if (state.onTenant) state.onTenant(tenant);
}

async function toggleLockbox() {
  const tenant = state.tenant;
  if (!tenant) return;
  const enable = !tenant.lockboxEnabled;
  const confirmed = await confirmDialog(enable
    ? {
      title: `Turn lockbox on for ${tenant.name}?`,
      text: "From now on every engineer request waits for a decision by one of your approvers. Open access windows stay open.",
      ok: "Turn lockbox on",
    }
    : {
      title: `Turn lockbox off for ${tenant.name}?`,
      text: "Engineers' requests will be approved at once, without anyone deciding. Every access is still gated, recorded, streamed and audited, and you can still revoke it.",
      ok: "Turn lockbox off",
      danger: true,
    });
  if (!confirmed) return;
  const toggle = $("lockbox-toggle");
  const problem = $("lockbox-error");
  problem.hidden = true;
  toggle.disabled = true;
  try {
    const updated = (await gql(SET_ENABLED, { enabled: enable })).setLockboxEnabled;
    setTenant(updated, false);
    notice(`Lockbox is now ${updated.lockboxEnabled ? "on" : "off"} for ${updated.name}.`);
  } catch (error) {
    toggle.disabled = false;
    showError(`Could not turn lockbox ${enable ? "on" : "off"}`, error, problem);
  }
}

// ---- settings ----------------------------------------------------------------------------

function fillSettings(settings) {
  for (const name of DURATIONS) {
    $(`set-${name}`).value = String(settings[name]);
    durationHint(name);
  }
  $("set-notificationEmails").value = settings.notificationEmails.join("\n");
  $("set-requiredApprovals").value = String(settings.requiredApprovals);
  $("set-allowEmergencyAccess").checked = settings.allowEmergencyAccess;
  clearFieldErrors();
}

function durationHint(name) {
  const raw = $(`set-${name}`).value.trim();
  const seconds = Number(raw);
  $(`hint-${name}`).textContent = raw && Number.isInteger(seconds) && seconds > 0 ? `= ${fmtDuration(seconds)}` : "";
}

function clearFieldErrors() {
  for (const name of FIELDS) {
    const node = $(`err-${name}`);
    node.textContent = "";
    node.hidden = true;
    $(`set-${name}`).removeAttribute("aria-invalid");
  }
  $("settings-error").hidden = true;
}

function fieldError(name, text) {
  const node = $(`err-${name}`);
  node.textContent = text;
  node.hidden = false;
  $(`set-${name}`).setAttribute("aria-invalid", "true");
}

/** The field an API message is about: the first field name it mentions. */
export function fieldOf(message) {
  let best = null;
  let at = Infinity;
  for (const name of FIELDS) {
    const index = message.indexOf(name);
    if (index >= 0 && index < at) {
      best = name;
      at = index;
    }
  }
  return best;
}

async function saveSettings() {
  clearFieldErrors();
  const input = {};
  let bad = false;
  for (const name of DURATIONS) {
    const raw = $(`set-${name}`).value.trim();
    const value = Number(raw);
    if (!raw || !Number.isInteger(value)) {
      fieldError(name, `${name} must be a whole number of seconds`);
      bad = true;
    } else {
      input[name] = value;
    }
  }
  const required = Number($("set-requiredApprovals").value.trim());
  if (!Number.isInteger(required)) {
    fieldError("requiredApprovals", "requiredApprovals must be a whole number from 1 to 5");
    bad = true;
  } else {
    input.requiredApprovals = required;
  }
  if (bad) return;
  input.allowEmergencyAccess = $("set-allowEmergencyAccess").checked;
  input.notificationEmails = $("set-notificationEmails").value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  const button = $("settings-save");
  button.disabled = true;
  try {
    const tenant = (await gql(UPDATE_SETTINGS, { input })).updateLockboxSettings;
    setTenant(tenant, true);
    notice("Settings saved.");
  } catch (error) {
    const field = fieldOf(error.message || "");
    if (field) fieldError(field, error.message);
    else showError("Could not save the settings", error, $("settings-error"));
    const target = field ? $(`set-${field}`) : null;
    if (target) target.focus();
  } finally {
    button.disabled = false;
  }
}

// ---- notifications -------------------------------------------------------------------------

async function loadNotifications(fromStart) {
  const gen = state.gen;
  const more = $("notifications-more");
  more.disabled = true;
  try {
    const after = fromStart ? null : state.notificationsAfter;
    const page = (await gql(NOTIFICATIONS, { first: NOTIFICATIONS_PAGE, after })).notifications;
    if (gen !== state.gen) return;
    const rows = page.edges.map((edge) => notificationRow(edge.node));
    if (fromStart) replace($("notification-rows"), rows);
    else $("notification-rows").append(...rows);
    const shown = $("notification-rows").children.length;
    $("notifications-empty").hidden = shown > 0;
    $("notification-rows").closest(".table-wrap").hidden = shown === 0;
    state.notificationsAfter = page.pageInfo.endCursor;
    more.hidden = !page.pageInfo.hasNextPage;
  } catch (error) {
    if (gen === state.gen) showError("Loading the notifications", error);
  } finally {
    more.disabled = false;
  }
}

function notificationRow(n) {
  const to = n.channel === "EMAIL" ? n.recipient : n.webhookUrl || "(deleted webhook)";
  return el("tr", {},
    el("td", { dataset: { label: "Created" } }, timeEl(n.createdAt)),
    el("td", { dataset: { label: "Channel" } }, n.channel === "EMAIL" ? "Mail" : "Webhook"),
    el("td", { dataset: { label: "Event" } }, el("code", {}, n.event)),
    el("td", { dataset: { label: "To" }, class: "wrap" }, to || "—"),
    el("td", { dataset: { label: "Status" } }, el("span", { class: ["delivery", `delivery-${n.status.toLowerCase()}`] }, n.status),
      n.attempts ? el("span", { class: "muted" }, ` · ${n.attempts} ${n.attempts === 1 ? "attempt" : "attempts"}`) : ""),
    el("td", { dataset: { label: "Last error" }, class: "wrap" }, n.lastError || "—"),
    el("td", { dataset: { label: "Request" } }, n.requestId
      ? el("a", { href: requestHref(n.requestId), title: n.requestId }, `${n.requestId.slice(0, 8)}…`)
      : "—"));
}

export function resetAdmin() {
  state.gen += 1;
  state.tenant = null;
  state.notificationsAfter = null;
  replace($("notification-rows"));
}

