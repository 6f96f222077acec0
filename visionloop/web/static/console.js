// The console's shared behaviour (every console page loads it after htmx). Pages work without it:
// forms post and pages reload; this adds what needs a script (select all, confirmations).
"use strict";

(() => {
  // a checkbox with data-select-all="NAME" ticks every checkbox named NAME
  document.querySelectorAll("input[data-select-all]").forEach((all) => {
    const name = all.dataset.selectAll;
    const boxes = () => Array.from(document.querySelectorAll(`input[type=checkbox][name="${name}"]`));
    all.addEventListener("change", () => {
      boxes().forEach((b) => { b.checked = all.checked; b.dispatchEvent(new Event("change", { bubbles: true })); });
    });
  });
})();
