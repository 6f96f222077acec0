// The console's shared behaviour (every console page loads it after htmx). Pages work without it:
// forms post and pages reload; this adds what needs a script.
"use strict";

(() => {
  // a checkbox with data-select-all="NAME" ticks every checkbox named NAME (delegated: it keeps working
  // after htmx swaps part of the page)
  document.addEventListener("change", (e) => {
    const all = e.target;
    if (!(all instanceof HTMLInputElement) || !all.dataset.selectAll) return;
    document.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`).forEach((b) => {
      b.checked = all.checked;
    });
  });
  // a form with data-confirm asks first; the dataset page's bulk form asks before removing images
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    let question = form.dataset.confirm || "";
    if (form.id === "bulk" && form.elements.action && form.elements.action.value === "remove") {
      const n = form.querySelectorAll("input[name=entry]:checked").length;
      question = `Remove ${n} image${n === 1 ? "" : "s"} from the dataset?`;
    }
    if (question && !window.confirm(question)) e.preventDefault();
  }, true);

  // an image's label form: 1-9 choose (or tick) a label, 0 no label, Enter save and next, → next image
  const labels = document.getElementById("labels-form");
  if (labels) {
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
      const t = e.target;
      if (t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && !["radio", "checkbox"].includes(t.type)))) return;
      const input = labels.querySelector(`input[data-key="${e.key}"]`);
      if (input) {
        e.preventDefault();
        input.checked = input.type === "checkbox" ? !input.checked : true;
        input.focus({ preventScroll: true });
      } else if (e.key === "Enter" && !(t && t.tagName === "BUTTON")) {
        e.preventDefault();
        labels.requestSubmit(document.getElementById("save-next"));
      } else if (e.key === "ArrowRight" && !(t && t.tagName === "INPUT")) {
        const next = document.getElementById("next-image");
        if (next) { e.preventDefault(); next.click(); }
      }
    });
  }
})();
