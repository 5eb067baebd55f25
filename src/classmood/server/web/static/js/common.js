/* ClassMood: helpers shared by every page, as an ES module. No framework, no build; user text only through
 * textContent. Pages import what they use: import { api, el } from "./common.js". */

export const config = JSON.parse(document.getElementById("cm-config").textContent);

/** Value of a cookie (the CSRF cookie `cm_csrf` is readable by design). */
export function cookie(name) {
  const hit = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

/** An Error that carries the HTTP status and the API's `detail`. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return detail ? JSON.stringify(detail) : "";
}

/**
 * Call the JSON API with the session cookie; unsafe methods carry the X-CSRF-Token header.
 * A 401 on a teacher page sends the visitor to the sign-in form (unless opts.noRedirect).
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: "application/json" };
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = cookie("cm_csrf");
  if (opts.token) headers.Authorization = "Bearer " + opts.token;
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401 && !opts.noRedirect && !opts.token) {
    toLogin();
    throw new ApiError(401, "please sign in");
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!res.ok) throw new ApiError(res.status, detailText(data && data.detail) || res.statusText);
  return data;
}

function toLogin() {
  const here = location.pathname + location.search;
  location.assign("/login?next=" + encodeURIComponent(here));
}

/** Build an element: el("td", {class: "x"}, "text", childNode). Strings become text nodes, never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    // through the CSSOM: the CSP (style-src without 'unsafe-inline') refuses style="" attributes, not this
    else if (key === "style") node.style.cssText = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function show(node, visible = true) { node.classList.toggle("hidden", !visible); }

/**
 * Handle a form in script. Its submit buttons are disabled in the HTML (`data-script-submit`) and enabled here, once
 * the handler is attached: a click or Enter while the page's modules still load would otherwise submit the form
 * natively, reloading the page with its fields in the URL (the password, on the sign-in form).
 */
export function onSubmit(form, handler) {
  form.addEventListener("submit", (event) => { event.preventDefault(); handler(event); });
  for (const button of form.querySelectorAll("[data-script-submit]")) button.disabled = false;
}

export function showError(err, id = "page-error") {
  const box = document.getElementById(id);
  if (!box) return;
  box.textContent = err ? (err.message || String(err)) : "";
  show(box, Boolean(err));
}

/**
 * Text for a plotly label, shown exactly as typed. Plotly reads labels as a small HTML dialect
 * (<a href>, <b>, <br>, entities), so a name holding markup would become a link; escaped, it stays text.
 */
export function plainLabel(text) {
  return String(text === null || text === undefined ? "" : text)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Math.round(100 * x) + "%");

export function negativeShare(shares) {
  return config.negative.reduce((sum, label) => sum + ((shares && shares[label]) || 0), 0);
}

export function topLabel(counts) {
  let best = null;
  for (const label of config.labels) {
    if ((counts && counts[label]) > 0 && (best === null || counts[label] > counts[best])) best = label;
  }
  return best;
}

/** A random RFC 4122 v4 uuid; crypto.randomUUID exists only in secure contexts. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// No "Share chart..." button: it would upload the chart's data to Plotly's cloud.
const PLOT_CONFIG = { responsive: true, displaylogo: false, toImageButtonOptions: { format: "png", scale: 2 },
  modeBarButtonsToRemove: ["sendChartToCloud"] };
const PLOT_LAYOUT = {
  margin: { l: 48, r: 12, t: 12, b: 48 }, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
  font: { family: "system-ui, sans-serif", size: 13, color: "#1b1f24" }, legend: { orientation: "h", y: -0.2 },
};

export function layout(extra = {}) { return Object.assign({}, PLOT_LAYOUT, extra); }

/** A bar chart of one histogram (counts or shares by label) in the fixed label order and colours. */
export function histogramTrace(values, asShare) {
  return {
    type: "bar", x: config.labels, y: config.labels.map((l) => (values && values[l]) || 0),
    marker: { color: config.labels.map((l) => config.colors[l]) },
    hovertemplate: asShare ? "%{x}: %{y:.0%}<extra></extra>" : "%{x}: %{y}<extra></extra>",
  };
}

/** Draw or redraw a plotly chart once plotly.js is there (it loads deferred). */
export function plot(id, traces, extraLayout = {}, extraConfig = {}) {
  if (!window.Plotly) return Promise.resolve(null);
  return window.Plotly.react(id, traces, layout(extraLayout), Object.assign({}, PLOT_CONFIG, extraConfig));
}

/** Show who is signed in, and a working "Sign out" button. */
export async function whoami() {
  const me = await api("GET", "/api/me");
  const user = me && (me.user || me);
  if (user && user.email) {
    document.getElementById("whoami-name").textContent = user.name || user.email;
    show(document.getElementById("whoami"));
  }
  return user;
}

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", async () => {
    try { await api("POST", "/api/auth/logout", undefined, { noRedirect: true }); } catch (_) { /* signed out anyway */ }
    location.assign("/");
  });
});

// One time format on every page, chart and table: the browser's locale, to the minute.
const TIME = { hour: "numeric", minute: "2-digit" };

/** A time of day in the browser's locale ("10:05 AM", "10:05"); "–" for none. Epoch seconds or a date string. */
export const fmtTime = (value) => {
  if (!value) return "–";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleTimeString([], TIME);
};

/** A date with its time in the browser's locale; "–" for none. Epoch seconds or a date string. */
export const fmtDate = (value) => {
  if (!value) return "–";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  const day = { year: "numeric", month: "short", day: "numeric" };
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString([], Object.assign(day, TIME));
};

/** The browser's offset from UTC in seconds now (for the server's utc_offset_s: PDF times, hours of the day). */
export const utcOffsetS = () => -new Date().getTimezoneOffset() * 60;

/** A date string or epoch seconds as epoch seconds (null for none). */
export const epoch = (value) => (value === null || value === undefined ? null
  : typeof value === "number" ? value : Date.parse(value) / 1000);

/** "12 min", "1 h 05 min", "45 s": a duration in seconds. */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

const BACKOFF_MAX_MS = 15000;

/** Milliseconds before retry number ``attempt`` (0, 1, …): doubling from 0.5 s up to 15 s, each drawn ±25 % so
 * that a class (or a school's dashboards) that lost the server together does not come back in one burst. */
export function backoff(attempt) {
  return Math.min(BACKOFF_MAX_MS, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
}
