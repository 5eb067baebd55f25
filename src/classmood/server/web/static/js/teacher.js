/* Teacher page: courses, sessions, start/end, join links with a copy button. */
import { api, el, onSubmit, show, showError, whoami } from "./common.js";

function joinUrl(session) {
  // The server's join_url may be relative or absolute; the link shared with students must be absolute.
  return new URL(session.join_url || "/join/" + session.code, location.origin).href;
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // Clipboard API needs a secure context: fall back to selecting a hidden textarea.
    const area = el("textarea", { class: "hidden" }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const old = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = old; }, 1500);
}

function statusPill(status) {
  return el("span", { class: "pill " + (status === "live" ? "live" : status === "ended" ? "ended" : "") }, status);
}

function sessionRow(session, reload) {
  const url = joinUrl(session);
  const act = async (what) => {
    try { await api("POST", `/api/sessions/${session.id}/${what}`); await reload(); } catch (err) { showError(err); }
  };
  const actions = el("td", { class: "row" });
  if (session.status === "scheduled") {
    actions.append(el("button", { type: "button", class: "start-session", onclick: () => act("start") }, "Start"));
  }
  if (session.status === "live") {
    actions.append(el("button", { type: "button", class: "danger end-session", onclick: () => act("end") }, "End"));
  }
  actions.append(el("a", { class: "button secondary live-link", href: `/teacher/sessions/${session.id}` }, "Live view"));
  actions.append(el("a", { class: "button secondary report-link", href: `/teacher/sessions/${session.id}/report` },
    "Report"));
  const copy = el("button", { type: "button", class: "secondary copy-link", "aria-label": "Copy join link of " +
    session.title }, "Copy");
  copy.addEventListener("click", () => copyText(url, copy));
  return el("tr", { "data-session-id": session.id },
    el("td", {}, el("a", { href: `/teacher/sessions/${session.id}` }, session.title)),
    el("td", {}, statusPill(session.status)),
    el("td", {}, el("code", { class: "join" }, url), " ", copy),
    actions);
}

function courseCard(course, sessions, reload) {
  const node = document.getElementById("course-tpl").content.firstElementChild.cloneNode(true);
  node.dataset.courseId = course.id;
  node.querySelector(".course-title").textContent = course.title;
  const trend = node.querySelector(".course-trend");
  trend.href = `/teacher/courses/${course.id}`;
  trend.setAttribute("aria-label", "Course over time: " + course.title);
  const input = node.querySelector(".session-title");
  input.id = "session-title-" + course.id;
  node.querySelector(".session-label").setAttribute("for", input.id);
  onSubmit(node.querySelector(".session-form"), async () => {
    const title = input.value.trim();
    if (!title) { showError(new Error("Please give the session a title.")); input.focus(); return; }
    try {
      await api("POST", `/api/courses/${course.id}/sessions`, { title });
      await reload();
    } catch (err) { showError(err); }
  });
  const body = node.querySelector(".sessions");
  for (const s of sessions) body.append(sessionRow(s, reload));
  if (!sessions.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No session yet.")));
  return node;
}

async function reload() {
  showError(null);
  const courses = await api("GET", "/api/courses");
  const lists = await Promise.all(courses.map((c) => api("GET", `/api/courses/${c.id}/sessions`)));
  const box = document.getElementById("courses");
  box.replaceChildren(...courses.map((c, i) => courseCard(c, lists[i], reload)));
  show(document.getElementById("no-courses"), courses.length === 0);
}

document.addEventListener("DOMContentLoaded", async () => {
  try { await whoami(); await reload(); } catch (err) { if (err.status !== 401) showError(err); }
  // wired once the courses are listed: a course created before that would be drawn twice
  onSubmit(document.getElementById("course-form"), async () => {
    const input = document.getElementById("course-title");
    const title = input.value.trim();
    if (!title) { showError(new Error("Please give the course a title.")); input.focus(); return; }
    try {
      await api("POST", "/api/courses", { title });
      input.value = "";
      await reload();
    } catch (err) { showError(err); }
  });
});
