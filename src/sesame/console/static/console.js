// Sesame console: the few things pages do without a reload. Every page works without this file.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Live regions: <div data-live="FRAGMENT_URL" data-stream="SSE_URL"> re-fetches its fragment (with
  // the page's own query string) each time the server-sent event stream says something changed.
  document.querySelectorAll("[data-live][data-stream]").forEach((region) => {
    const source = new EventSource(region.dataset.stream);
    let pending = false;
    source.addEventListener("change", async () => {
      if (pending) return;
      pending = true;
      try {
        const url = region.dataset.live + window.location.search;
        const response = await fetch(url, { credentials: "same-origin" });
        if (response.ok) region.innerHTML = await response.text();
        region.dispatchEvent(new CustomEvent("sesame:updated", { bubbles: true }));
      } finally {
        pending = false;
      }
    });
  });

  // Copy buttons: <button data-copy="TEXT"> (for DNS records and the like).
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy]");
    if (!button) return;
    event.preventDefault();
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
    } catch (e) {
      button.textContent = "Select and copy";
    }
  });

  // Forms that ask first: <form data-confirm="Delete every message?">.
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  window.sesame = { csrf };
})();
