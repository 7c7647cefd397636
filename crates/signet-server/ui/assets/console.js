// Signet console: shows every <time datetime> in the viewer's zone, with
// the UTC time kept in its title. Loaded from /ui/assets (the page's CSP
// allows no inline script).
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
  document.addEventListener("DOMContentLoaded", () => {
    localise(document);
    confirmations(document);
  });
})();
