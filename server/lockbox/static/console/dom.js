// DOM building and formatting. Every string from the server reaches the page
// through text nodes (`append(string)` / `textContent`), never parsed as HTML.

export const $ = (id) => document.getElementById(id);

/**
 * el("div", { class: "card", on: { click: fn }, dataset: { id } }, "text", child, [more])
 * Other props become attributes; `true` makes an empty attribute, and
 * null/undefined/false leave it out. Children that are not nodes become text.
 */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (key === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === undefined || child === null || child === false || child === "") continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

export const show = (node, visible = true) => { node.hidden = !visible; };

// ---- time ---------------------------------------------------------------------------

const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const TIME = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

export const ms = (iso) => new Date(iso).getTime();
export const fmtTime = (iso) => (iso ? DATE_TIME.format(new Date(iso)) : "—");
export const fmtClock = (iso) => TIME.format(new Date(iso));

/** A <time> element: local time shown, the exact ISO value in its title. */
export function timeEl(iso, cls) {
  if (!iso) return el("span", { class: "muted" }, "—");
  return el("time", { datetime: iso, title: iso, class: cls }, fmtTime(iso));
}

/** 28800 -> "8 h"; 5400 -> "1 h 30 min"; 345600 -> "4 days". */
export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const parts = [];
  let rest = Math.max(0, Math.round(seconds));
  const days = Math.floor(rest / 86400); rest %= 86400;
  const hours = Math.floor(rest / 3600); rest %= 3600;
  const minutes = Math.floor(rest / 60); rest %= 60;
  if (days) parts.push(days === 1 ? "1 day" : `${days} days`);
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (rest || !parts.length) parts.push(`${rest} s`);
  return parts.slice(0, 2).join(" ");
}

/** What is left until `iso`, e.g. "7 h 59 min 12 s", "3 days 4 h"; null once past. */
export function fmtRemaining(iso, now = Date.now()) {
  const left = Math.floor((ms(iso) - now) / 1000);
  if (left <= 0) return null;
  const days = Math.floor(left / 86400);
  const hours = Math.floor((left % 86400) / 3600);
  const minutes = Math.floor((left % 3600) / 60);
  const seconds = left % 60;
  if (days) return `${days} ${days === 1 ? "day" : "days"} ${hours} h`;
  if (hours) return `${hours} h ${minutes} min ${seconds} s`;
  if (minutes) return `${minutes} min ${seconds} s`;
  return `${seconds} s`;
}

/**
 * A live countdown to `iso` ("ends in 7 h 59 min 12 s"; `ended` once past):
 * the page's ticker updates every `[data-until]` element once a second
 * (see tickCountdowns).
 */
export function countdown(iso, { before = "", after = "", ended = "ended" } = {}) {
  const node = el("span", { class: "countdown", dataset: { until: iso, before, after, ended } });
  renderCountdown(node, Date.now());
  return node;
}

function renderCountdown(node, now) {
  const left = fmtRemaining(node.dataset.until, now);
  const text = left === null ? node.dataset.ended : `${node.dataset.before}${left}${node.dataset.after}`;
  if (node.textContent !== text) node.textContent = text;
  const soon = left !== null && ms(node.dataset.until) - now < 15 * 60 * 1000;
  node.classList.toggle("soon", soon);
  node.classList.toggle("ended", left === null);
  return left === null;
}

/** Updates every countdown; answers the ones that have just ended. */
export function tickCountdowns(root = document) {
  const now = Date.now();
  const ended = [];
  for (const node of root.querySelectorAll("[data-until]")) {
    const wasEnded = node.classList.contains("ended");
    if (renderCountdown(node, now) && !wasEnded) ended.push(node);
  }
  return ended;
}

// ---- small pieces --------------------------------------------------------------------

export const STATUS_WORDS = {
  PENDING: "Pending",
  APPROVED: "Access open",
  DENIED: "Denied",
  EXPIRED: "Expired",
  REVOKED: "Revoked",
  COMPLETED: "Completed",
  CANCELED: "Canceled",
};

export const ROLE_WORDS = {
  TENANT_ADMIN: "Tenant admin",
  APPROVER: "Approver",
  AUDITOR: "Auditor",
  ENGINEER: "Engineer",
  SUPPORT_MANAGER: "Support manager",
  OPERATOR_ADMIN: "Operator admin",
};

export function statusBadge(status) {
  return el("span", { class: ["status", `status-${status.toLowerCase()}`] }, STATUS_WORDS[status] || status);
}

export const requestHref = (id) => `#/requests/${encodeURIComponent(id)}`;

/** "a1b2c3d4…" with the whole id in the title, for places where the id is secondary. */
export const shortId = (id) => el("code", { class: "id", title: id }, id.length > 13 ? `${id.slice(0, 8)}…` : id);

export const json = (value) => JSON.stringify(value);

/** A field label and its value, for definition lists. */
export function fact(label, ...value) {
  return [el("dt", {}, label), el("dd", {}, ...value)];
}

const signatures = new WeakMap();

/**
 * Make `container`'s children the nodes for `items`, in order, reusing the
 * node of an item whose data has not changed (so a reason being typed, or
 * the focus, survives a live update of another item).
 */
export function reconcile(container, items, keyOf, build, empty) {
  if (!items.length) {
    if (!(container.childElementCount === 1 && container.firstElementChild.classList.contains("empty"))) {
      container.replaceChildren(el("p", { class: "empty" }, empty));
    }
    return;
  }
  const existing = new Map();
  for (const child of container.children) if (child.dataset.key) existing.set(child.dataset.key, child);
  const nodes = items.map((item) => {
    const key = keyOf(item);
    const signature = JSON.stringify(item);
    const old = existing.get(key);
    if (old && signatures.get(old) === signature) return old;
    const node = build(item);
    node.dataset.key = key;
    signatures.set(node, signature);
    return node;
  });
  let cursor = container.firstChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextSibling;
      continue;
    }
    container.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
}

/** An object's fields as "key value" pairs (strings as they are, the rest as JSON). */
export function pairs(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return el("code", { class: "detail" }, json(value));
  return el("span", { class: "pairs" }, Object.entries(value).map(([key, item]) =>
    el("span", { class: "pair" }, el("span", { class: "key" }, key), " ",
      el("code", {}, typeof item === "string" ? item : json(item)))));
}
