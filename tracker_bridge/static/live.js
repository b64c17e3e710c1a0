// The dashboard's only script: refresh the "now" panel every few seconds and send the control buttons' requests.
// No build step: plain browser JavaScript.
(function () {
  "use strict";
  const TOKEN_KEY = "tracker-bridge-token";
  const REFRESH_MS = 3000;

  function tokenInput() { return document.getElementById("api-token"); }

  function restoreToken() {
    const input = tokenInput();
    if (!input) return;
    input.value = sessionStorage.getItem(TOKEN_KEY) || "";
    input.addEventListener("change", () => sessionStorage.setItem(TOKEN_KEY, input.value.trim()));
  }

  function setFlag(paused) {
    const flag = document.getElementById("paused-flag");
    if (!flag) return;
    flag.textContent = paused ? "paused" : "running";
    flag.className = paused ? "flag paused" : "flag running";
  }

  async function refreshNow() {
    const panel = document.querySelector("[data-live]");
    if (!panel) return;
    try {
      const response = await fetch(panel.dataset.live, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      panel.innerHTML = await response.text();
      const inner = document.getElementById("now-inner");
      if (inner) setFlag(inner.dataset.paused === "yes");
    } catch (e) {
      // The daemon may be restarting; the next tick tries again.
    }
  }

  async function sendControl(button) {
    const result = document.getElementById("control-result");
    const input = tokenInput();
    const token = (input && input.value.trim()) || sessionStorage.getItem(TOKEN_KEY) || "";
    if (input) sessionStorage.setItem(TOKEN_KEY, token);
    const response = await fetch(button.dataset.action, {
      method: "POST",
      headers: { Authorization: "Bearer " + token },
    });
    let body = {};
    try { body = await response.json(); } catch (e) { body = {}; }
    if (result) {
      result.textContent = response.ok
        ? button.textContent.trim() + ": requested"
        : button.textContent.trim() + ": " + (body.error || response.statusText);
      result.className = "control-result" + (response.ok ? "" : " error");
    }
    if (response.ok) await refreshNow();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.control");
    if (button) { event.preventDefault(); sendControl(button); }
  });
  restoreToken();
  if (document.querySelector("[data-live]")) setInterval(refreshNow, REFRESH_MS);
})();
