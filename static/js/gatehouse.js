// Small progressive enhancements; every page works without JavaScript.
(() => {
  "use strict";

  const canCopy = Boolean(navigator.clipboard && window.isSecureContext);

  // Buttons that only work with JavaScript are rendered hidden and shown here.
  document.querySelectorAll("[data-print], [data-copy]").forEach((button) => {
    if (button.hasAttribute("data-copy") && !canCopy) return;
    button.hidden = false;
  });

  const textOf = (source) => {
    if (source.matches("ol, ul")) {
      return Array.from(source.querySelectorAll("li"), (li) => li.textContent.trim()).join("\n");
    }
    return source.textContent.trim();
  };

  document.addEventListener("click", async (event) => {
    const print = event.target.closest("[data-print]");
    if (print) {
      event.preventDefault();
      window.print();
      return;
    }
    const copy = event.target.closest("[data-copy]");
    if (!copy) return;
    event.preventDefault();
    const source = document.querySelector(copy.dataset.copy);
    if (!source) return;
    let text = textOf(source);
    if (copy.hasAttribute("data-copy-compact")) text = text.replace(/\s+/g, "");
    const status = copy.parentElement.querySelector(".copy-status");
    try {
      await navigator.clipboard.writeText(text);
      if (status) status.textContent = "Copied.";
    } catch (error) {
      if (status) status.textContent = "Could not copy: select the text and copy it instead.";
    }
  });

  // The account menu (a <details>, so it works without JavaScript) closes like a menu: on a
  // click elsewhere or Escape, giving focus back to its button.
  const accountMenu = document.querySelector(".account-menu");
  if (accountMenu) {
    document.addEventListener("click", (event) => {
      if (accountMenu.open && !accountMenu.contains(event.target)) accountMenu.open = false;
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && accountMenu.open) {
        accountMenu.open = false;
        accountMenu.querySelector("summary").focus();
      }
    });
  }

  // After a rejected form, put the cursor where the fix is needed: the first invalid field
  // (whose error is tied to it by aria-describedby), else the form's error summary.
  const invalid = document.querySelector('main [aria-invalid="true"]');
  const target = invalid || document.querySelector("main .form-errors");
  if (target) {
    target.focus();
    if (invalid && invalid.type !== "password" && typeof invalid.select === "function") invalid.select();
  }
})();
