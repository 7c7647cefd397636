// Signet console: shows every <time datetime> in the viewer's zone, with
// the UTC time kept in its title; asks before forms marked data-confirm;
// redraws pages marked data-refresh. Loaded from /ui/assets (the page's
// CSP allows no inline script).
"use strict";

(function () {
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short",
  });
  function localise(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      el.title = el.getAttribute("datetime") + " (UTC)";
      el.textContent = format.format(when);
      el.dataset.localised = "true";
    }
  }
  // A form marked data-confirm asks before it sends.
  function confirmations(root) {
    for (const form of root.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    }
  }
  // A page whose <main> has data-refresh="N" redraws its content from the
  // server every N seconds while the tab is visible (short polling, no
  // inline script; the session cookie goes along, same origin). A page
  // that answers anything but 200 (signed out, server gone) stops it.
  function refreshing(main) {
    const seconds = Number(main.dataset.refresh);
    if (!(seconds > 0)) return;
    const timer = setInterval(async () => {
      if (document.visibilityState !== "visible") return;
      try {
        const answer = await fetch(window.location.href, { redirect: "manual", cache: "no-store" });
        if (answer.status !== 200) return clearInterval(timer);
        const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").querySelector("main");
        if (!fresh) return clearInterval(timer);
        main.replaceChildren(...fresh.childNodes);
        main.dataset.refreshed = String(Number(main.dataset.refreshed || 0) + 1);
        localise(main);
        confirmations(main);
      } catch {
        clearInterval(timer);
      }
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", () => {
    localise(document);
    confirmations(document);
    const main = document.querySelector("main[data-refresh]");
    if (main) refreshing(main);
  });
})();
