// Signet console: shows every <time datetime> in the viewer's zone, with
// the UTC time kept in its title; asks before forms marked data-confirm;
// redraws pages marked data-refresh; checks cron expressions as they are
// typed (inputs marked data-cron-check, asking the server). Loaded from /ui/assets (the page's
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
  // A cron input marked data-cron-check="URL" is checked by the server as
  // it is typed (debounced), with the zone of the input named by
  // data-cron-zone; the answer (the next due times, or what is wrong) goes
  // into the element named by data-cron-out. Only the latest answer shows.
  function cronChecks(root) {
    for (const input of root.querySelectorAll("input[data-cron-check]")) {
      const out = document.getElementById(input.dataset.cronOut);
      const zone = document.getElementById(input.dataset.cronZone);
      if (!out) continue;
      let timer;
      let asked = 0;
      const show = (body) => {
        out.replaceChildren();
        if (body.ok) {
          input.setAttribute("aria-invalid", "false");
          const p = document.createElement("p");
          p.className = "good";
          p.textContent = "Next due times:";
          const list = document.createElement("ol");
          for (const at of body.next) {
            const item = document.createElement("li");
            const time = document.createElement("time");
            time.setAttribute("datetime", at);
            time.textContent = at;
            item.append(time);
            list.append(item);
          }
          out.append(p, list);
          localise(out);
        } else {
          input.setAttribute("aria-invalid", "true");
          const p = document.createElement("p");
          p.className = "bad";
          p.textContent = body.message;
          out.append(p);
        }
        out.dataset.checked = String(asked);
      };
      const check = async () => {
        const mine = ++asked;
        if (!input.value.trim()) {
          out.replaceChildren();
          input.removeAttribute("aria-invalid");
          return;
        }
        const query = new URLSearchParams({ cron: input.value, timezone: zone ? zone.value : "" });
        try {
          const answer = await fetch(`${input.dataset.cronCheck}?${query}`, { cache: "no-store", redirect: "manual" });
          if (mine !== asked) return;
          if (answer.status !== 200) {
            show({ ok: false, message: "The server could not check it (signed out?). Reload the page." });
            return;
          }
          show(await answer.json());
        } catch {
          if (mine === asked) show({ ok: false, message: "The server could not be reached to check it." });
        }
      };
      const later = () => {
        clearTimeout(timer);
        timer = setTimeout(check, 300);
      };
      input.addEventListener("input", later);
      if (zone) zone.addEventListener("input", later);
      check();
    }
  }
  document.addEventListener("DOMContentLoaded", () => {
    localise(document);
    confirmations(document);
    cronChecks(document);
    const main = document.querySelector("main[data-refresh]");
    if (main) refreshing(main);
  });
})();
