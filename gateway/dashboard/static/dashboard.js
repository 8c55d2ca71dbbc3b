// The dashboard's only script: it adds conveniences and nothing a page needs to work.
// `data-filter`: a search box hides the rows of its table that do not contain its text.
// `data-auto-refresh`: a checkbox that reloads the page every N seconds, remembered per browser.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input[data-filter]")) {
    const rows = document.querySelectorAll(box.dataset.filter);
    box.addEventListener("input", () => {
      const wanted = box.value.trim().toLowerCase();
      for (const row of rows) {
        row.classList.toggle("hidden", !row.textContent.toLowerCase().includes(wanted));
      }
    });
  }

  for (const toggle of document.querySelectorAll("input[data-auto-refresh]")) {
    const key = "gateway.autoRefresh";
    const seconds = Number(toggle.dataset.autoRefresh);
    let timer = null;
    const apply = () => {
      window.clearTimeout(timer);
      if (toggle.checked) {
        timer = window.setTimeout(() => window.location.reload(), seconds * 1000);
      }
    };
    toggle.checked = window.localStorage.getItem(key) === "on";
    toggle.addEventListener("change", () => {
      window.localStorage.setItem(key, toggle.checked ? "on" : "off");
      apply();
    });
    apply();
  }

  // Show each time in the reader's own time zone on hover.
  for (const time of document.querySelectorAll("time[datetime]")) {
    const when = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      time.title = when.toLocaleString();
    }
  }
});
