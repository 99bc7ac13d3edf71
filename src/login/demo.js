/* Script for the secure-otp-server demo page (served at /demo.js, loaded with defer).
 * Walks through email -> one-time code -> session against the same-origin JSON API.
 * Server text is only ever written with textContent, never innerHTML. */
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    signedOut: $("signed-out"), signedIn: $("signed-in"), who: $("who"),
    emailForm: $("email-form"), email: $("email"),
    codeForm: $("code-form"), code: $("code"), resend: $("resend"), logout: $("logout"),
    status: $("status"), error: $("error"), attempts: $("attempts"),
  };
  // Errors after which the current code is unusable and a new one must be requested.
  const RESTART = ["OTP:TOO_MANY_ATTEMPTS", "OTP:INVALID_COOKIE", "OTP:EXPIRED"];
  let sentTo = "";

  // fetch wrapper: never throws; data is the parsed JSON body or null.
  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: { accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["content-type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    let res;
    try { res = await fetch(path, opts); } catch (e) { return { ok: false, status: 0, data: null }; }
    let data = null;
    try { data = await res.json(); } catch (e) { /* empty or non-JSON body */ }
    return { ok: res.ok, status: res.status, data };
  }

  function clearMessages() { ui.error.textContent = ""; ui.attempts.textContent = ""; }
  function setStatus(text) { ui.status.textContent = text; }

  function showError(r) {
    const d = r.data;
    if (d && typeof d.error === "string") {
      ui.error.textContent = `${d.message || "Request failed."} (${d.error})`;
    } else if (r.status === 0) {
      ui.error.textContent = "Could not reach the server. Check your connection and try again.";
    } else {
      ui.error.textContent = `Unexpected response from the server (HTTP ${r.status}).`;
    }
  }

  // Toggle between the email step and the code step of the signed-out section.
  function codeStep(on) {
    ui.emailForm.hidden = on;
    ui.codeForm.hidden = !on;
    (on ? ui.code : ui.email).focus();
  }

  function showSignedIn(sub) {
    ui.who.textContent = sub;
    ui.signedOut.hidden = true;
    ui.signedIn.hidden = false;
    setStatus("Signed in.");
  }

  function showSignedOut() {
    ui.signedIn.hidden = true;
    ui.signedOut.hidden = false;
    ui.who.textContent = "";
    ui.email.value = ui.code.value = "";
    sentTo = "";
    codeStep(false);
    setStatus("Not signed in. Enter your email to receive a code.");
  }

  function requestNewCode() {
    ui.code.value = "";
    codeStep(false);
    setStatus("This code can no longer be used. Please request a new code.");
  }

  // Disable every button while a request is in flight (avoids double submits).
  async function busy(action) {
    const buttons = document.querySelectorAll("button");
    buttons.forEach((b) => { b.disabled = true; });
    try { await action(); } finally { buttons.forEach((b) => { b.disabled = false; }); }
  }

  async function refreshSession() {
    const r = await api("GET", "/api/session");
    if (r.ok && r.data && typeof r.data.sub === "string") {
      showSignedIn(r.data.sub);
      return true;
    }
    showSignedOut();
    return false;
  }

  ui.emailForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearMessages();
    busy(async () => {
      const email = ui.email.value.trim();
      const r = await api("POST", "/api/otp/create", { email });
      if (!r.ok) return showError(r);
      sentTo = email;
      ui.code.value = "";
      codeStep(true);
      setStatus(`Code sent to ${email}`);
    });
  });

  ui.codeForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    clearMessages();
    busy(async () => {
      const r = await api("POST", "/api/otp/verify", { otp: ui.code.value.trim() });
      if (r.ok) {
        if (!(await refreshSession())) {
          ui.error.textContent = "Code accepted, but no session was found. Are cookies enabled?";
        }
        return;
      }
      showError(r);
      const d = r.data || {};
      if (typeof d.attemptsLeft === "number") {
        ui.attempts.textContent = d.attemptsLeft === 1 ? "1 attempt left" : `${d.attemptsLeft} attempts left`;
      }
      if (d.attemptsLeft === 0 || RESTART.includes(d.error)) {
        requestNewCode();
      } else if (typeof d.otpBlock === "string") {
        setStatus(`Too many tries for now: wait until ${new Date(d.otpBlock).toLocaleTimeString()}.`);
      }
    });
  });

  ui.resend.addEventListener("click", () => {
    clearMessages();
    busy(async () => {
      const r = await api("POST", "/api/otp/resend");
      if (!r.ok) {
        showError(r);
        if (r.data && RESTART.includes(r.data.error)) requestNewCode();
        return;
      }
      ui.code.value = "";
      ui.code.focus();
      setStatus(`Code sent again to ${sentTo || "your email"}`);
    });
  });

  ui.logout.addEventListener("click", () => {
    clearMessages();
    busy(async () => {
      const r = await api("POST", "/api/session/logout");
      if (!r.ok) return showError(r);
      showSignedOut();
    });
  });

  refreshSession();
})();
