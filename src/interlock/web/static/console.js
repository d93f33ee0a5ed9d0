// Interlock console: progressive enhancement only. Every page works without it.
// - <time datetime> shown in the viewer's time zone (and "5 min ago" where marked)
// - copy buttons
// - live pages: an EventSource on main[data-live]; on an event the page fetches itself
//   and swaps each [data-live-region] by id, keeping focus where it was.
"use strict";

(function () {
  const absolute = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  function ago(date) {
    const seconds = (date.getTime() - Date.now()) / 1000;
    const steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"]];
    let value = seconds;
    for (const [size, unit] of steps) {
      if (Math.abs(value) < size) return relative.format(Math.round(value), unit);
      value /= size;
    }
    return null;
  }

  function localTimes(root) {
    for (const element of root.querySelectorAll("time[datetime]")) {
      const date = new Date(element.getAttribute("datetime"));
      if (isNaN(date)) continue;
      const local = absolute.format(date);
      element.title = local + " (" + zone + ")";
      const recent = element.hasAttribute("data-relative") ? ago(date) : null;
      element.textContent = recent && Math.abs(Date.now() - date) < 86400000 ? recent : local;
    }
  }

  function copyButtons(root) {
    for (const button of root.querySelectorAll("button[data-copy]")) {
      button.addEventListener("click", async () => {
        const source = document.getElementById(button.dataset.copy);
        const text = source ? source.textContent.trim() : "";
        try {
          await navigator.clipboard.writeText(text);
        } catch (error) {
          const range = document.createRange();
          range.selectNodeContents(source);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          document.execCommand("copy");
        }
        const label = button.textContent;
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = label; }, 1500);
      });
    }
  }

  let refreshing = null;
  let again = false;

  async function refresh(note) {
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      const response = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (response.redirected && new URL(response.url).pathname === "/login") {
        location.href = response.url; return;
      }
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const focused = document.activeElement && document.activeElement.id;
      for (const region of document.querySelectorAll("[data-live-region]")) {
        const replacement = fresh.getElementById(region.id);
        if (!replacement || replacement.innerHTML === region.innerHTML) continue;
        region.replaceWith(replacement);
        localTimes(replacement);
        copyButtons(replacement);
      }
      if (focused && document.activeElement === document.body) {
        const target = document.getElementById(focused);
        if (target) target.focus();
      }
      const status = document.getElementById("live-note");
      if (status && note) {
        status.textContent = note;
        clearTimeout(status.clearing);
        status.clearing = setTimeout(() => { status.textContent = ""; }, 8000);
      }
    })();
    try { await refreshing; } catch (error) { /* next event tries again */ }
    refreshing = null;
    if (again) { again = false; refresh(note); }
  }

  function watch() {
    const main = document.querySelector("main[data-live]");
    if (!main || !window.EventSource) return;
    const events = new EventSource(main.dataset.live);
    events.addEventListener("incident", (event) => {
      const data = JSON.parse(event.data);
      refresh(data.reference ? data.reference + " changed just now." : "Updated.");
    });
    events.addEventListener("attempt", () => refresh("New delivery attempt."));
    events.addEventListener("signed-out", () => { events.close(); location.href = "/login"; });
    window.addEventListener("pagehide", () => events.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    copyButtons(document);
    watch();
  });
})();
