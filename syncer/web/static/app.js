// The archive's only script: confirmation before a destructive form is sent.
// Served from the package ('self' in the page CSP); no inline script anywhere.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.classList.contains("confirm")) {
    if (!window.confirm(form.dataset.confirm || "Are you sure?")) event.preventDefault();
  }
});
