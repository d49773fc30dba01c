// Runbook editor: "Preview" renders beside the text without reloading the page. Without this
// script the same button posts the form and the server answers with the preview in place.
(function () {
  "use strict";
  var editor = document.querySelector(".editor[data-preview-url]");
  if (!editor || !window.fetch || !window.FormData) {
    return;
  }
  var form = editor.querySelector("form");
  var button = form && form.querySelector("button[data-preview]");
  var section = document.getElementById("preview");
  var content = section && section.querySelector(".preview__content");
  if (!button || !content) {
    return;
  }
  function fullPagePreview() {
    button.disabled = false;
    button.removeEventListener("click", onClick);
    button.click();
  }
  function onClick(event) {
    event.preventDefault();
    var data = new FormData(form);
    button.disabled = true;
    fetch(editor.getAttribute("data-preview-url"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRFToken": String(data.get("csrfmiddlewaretoken") || "") }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("preview failed: " + response.status);
      }
      return response.text();
    }).then(function (html) {
      // Rendered and sanitised on the server, exactly as the runbook page shows it.
      content.innerHTML = html;
      section.hidden = false;
      editor.classList.add("editor--previewing");
      button.disabled = false;
      section.focus();
    }).catch(fullPagePreview);
  }
  button.addEventListener("click", onClick);
})();
