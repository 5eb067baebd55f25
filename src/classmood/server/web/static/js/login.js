/* Sign-in form: POST /api/auth/login, then go to the page that asked for it. */
import { api, onSubmit, showError } from "./common.js";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const next = JSON.parse(document.getElementById("login-next").textContent) || "/teacher";
  onSubmit(form, async () => {
    showError(null, "login-error");
    const email = form.email.value.trim();
    const password = form.password.value;
    if (!email || !password) {
      showError(new Error("Please enter your email and password."), "login-error");
      return;
    }
    const button = document.getElementById("login-submit");
    button.disabled = true;
    try {
      await api("POST", "/api/auth/login", { email, password }, { noRedirect: true });
      location.assign(next);
    } catch (err) {
      const msg = err.status === 401 ? "Wrong email or password." : err.message;
      showError(new Error(msg), "login-error");
      button.disabled = false;
    }
  });
});
