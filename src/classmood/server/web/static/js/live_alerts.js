/* The live dashboard's alert rule and alerts. The rule is a setting of the session, stored and evaluated by the
 * server (PATCH /api/sessions/{id}), so it fires with no dashboard open; each firing is stored and arrives here as
 * the SSE event "alert", and GET /api/sessions/{id}/alerts lists those that came before this page was opened. */
import { api, config, el, fmtTime, onSubmit } from "./common.js";

const $ = (id) => document.getElementById(id);
const seen = new Set();

/** The rule in force: the session's alert_rule (its own settings, or the server's defaults). */
export function ruleOf(session) {
  const rule = session.alert_rule || {};
  return { share: rule.negative_share ?? config.alert_negative_share, after: rule.after_s ?? config.alert_after_s };
}

/** Show the session's rule in the form, unless the teacher is typing in it. */
export function showAlertRule(session) {
  const { share, after } = ruleOf(session);
  const form = $("alert-form");
  if (form.contains(document.activeElement)) return;
  $("alert-share").value = Math.round(100 * share);
  $("alert-after").value = Math.round(after);
}

/** Changing either field (or Enter) stores the rule on the session through `patch(body) -> Promise<bool>`. */
export function wireAlertRule(patch) {
  const share = $("alert-share");
  const after = $("alert-after");
  const apply = async () => {
    const s = Number(share.value);
    const a = Number(after.value);
    if (!(s >= 1 && s <= 100 && a >= 0)) { $("alert-saved").textContent = "Give 1 to 100 % and 0 s or more."; return; }
    if (await patch({ alert_negative_share: s / 100, alert_after_s: a })) {
      $("alert-saved").textContent = "Rule saved for this session";
    }
  };
  share.addEventListener("change", apply);
  after.addEventListener("change", apply);
  onSubmit($("alert-form"), apply);
}

/** One stored alert ({id, fired_at, text, ...}) at the top of the list; each id once. */
export function addAlert(alert) {
  if (seen.has(alert.id)) return;
  seen.add(alert.id);
  $("alerts").prepend(el("li", { class: "alert", "data-alert-id": alert.id },
    `${fmtTime(alert.fired_at)}: ${alert.text}`));
}

/** The session's alerts so far (a server without the route has none). */
export async function loadAlerts(sid) {
  let alerts = [];
  try { alerts = await api("GET", `/api/sessions/${sid}/alerts`); } catch (err) { if (err.status !== 404) throw err; }
  for (const a of alerts) addAlert(a);
  return alerts;
}
