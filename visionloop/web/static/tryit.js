// Try it: drop an image on the drop area (or anywhere on the page) to send it at once; choosing a file
// with the picker sends it too. Without this script the form works as it is: pick, then press Try.
"use strict";

(() => {
  const form = document.getElementById("try-form");
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  if (!form || !drop || !input) return;

  const send = () => {
    if (input.files && input.files.length) {
      drop.classList.add("over");
      form.requestSubmit();
    }
  };
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types).includes("Files");

  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    drop.classList.add("over");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.target === document.documentElement || e.target === drop) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    drop.classList.remove("over");
    const files = e.dataTransfer.files;
    if (!files.length) return;
    const one = new DataTransfer();
    one.items.add(files[0]);
    input.files = one.files;
    send();
  });
  input.addEventListener("change", send);
})();
