// Request form: when "On behalf of" changes, fetch the page for the new person and swap in what
// depends on them (approvers, warnings, start field, submit button) without losing what was typed.
// Without JavaScript the "Update approvers" button does the same with a full page load.
(() => {
  "use strict";

  const form = document.getElementById("request-form");
  const select = form && form.querySelector('select[name="beneficiary"]');
  const button = form && form.querySelector("[data-preview-button]");
  const status = document.getElementById("preview-status");
  if (!form || !select || !button || !window.fetch || !window.DOMParser) return;

  button.hidden = true;
  let pending = null;

  select.addEventListener("change", async () => {
    const body = new FormData(form);
    body.set("preview", "1");
    if (pending) pending.abort();
    pending = new AbortController();
    document.getElementById("approval-preview")?.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.action || window.location.href, {
        method: "POST",
        body,
        credentials: "same-origin",
        signal: pending.signal,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-swap]").forEach((region) => {
        const fresh = region.id && page.getElementById(region.id);
        if (fresh) region.replaceWith(document.importNode(fresh, true));
      });
      const who = select.selectedOptions[0] ? select.selectedOptions[0].textContent.trim() : "";
      if (status) status.textContent = `Approvers updated for ${who}.`;
    } catch (error) {
      if (error.name === "AbortError") return;
      // Fall back to the no-JavaScript path: a full page load keeps the typed values too.
      button.hidden = false;
      button.click();
    } finally {
      document.getElementById("approval-preview")?.removeAttribute("aria-busy");
    }
  });
})();
