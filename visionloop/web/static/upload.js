// The dataset page's uploads: images or a whole folder, chosen or dropped, sent a few at a time so that a
// progress bar can follow; each file keeps its path inside the folder (the server labels it with its
// folder's name when asked). Without this script the form still posts the chosen files in one go.
"use strict";

(() => {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const files = document.getElementById("files");
  const folder = document.getElementById("folder");
  const drop = document.getElementById("drop");
  const chosenText = document.getElementById("chosen");
  const button = document.getElementById("upload-button");
  const box = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("upload-status");
  const issues = document.getElementById("upload-issues");
  const maxBytes = Number(form.dataset.maxBytes) || 15 * 1024 * 1024;
  const IMAGE = /\.(jpe?g|png)$/i;
  const BATCH_FILES = 8;
  const BATCH_BYTES = 24 * 1024 * 1024;
  let pending = []; // [{file, path}]
  let busy = false;

  const hidden = (path) => path.split("/").some((part) => part.startsWith("."));
  function choose(list) {
    const all = list.filter((item) => !hidden(item.path));
    pending = all.filter((item) => IMAGE.test(item.path));
    const ignored = all.length - pending.length;
    chosenText.textContent = pending.length
      ? `${pending.length} image${pending.length === 1 ? "" : "s"} chosen` +
        (ignored ? ` (${ignored} other file${ignored === 1 ? "" : "s"} left out)` : "") + ": press Upload."
      : "No JPEG or PNG image among the chosen files.";
  }
  const fromInput = (input) => Array.from(input.files).map((f) => ({ file: f, path: f.webkitRelativePath || f.name }));
  files.addEventListener("change", () => { folder.value = ""; choose(fromInput(files)); });
  folder.addEventListener("change", () => { files.value = ""; choose(fromInput(folder)); });

  // --- drag and drop (files and folders) ----------------------------------------------------------
  function readEntry(entry, out) {
    if (entry.isFile) {
      return new Promise((resolve) => entry.file(
        (f) => { out.push({ file: f, path: entry.fullPath.replace(/^\/+/, "") }); resolve(); },
        () => resolve(),
      ));
    }
    if (!entry.isDirectory) return Promise.resolve();
    const reader = entry.createReader();
    return new Promise((resolve) => {
      const more = () => reader.readEntries(async (entries) => {
        if (!entries.length) { resolve(); return; }
        await Promise.all(entries.map((e) => readEntry(e, out)));
        more(); // readEntries returns at most 100 at a time
      }, () => resolve());
      more();
    });
  }
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const out = [];
    const items = Array.from(e.dataTransfer.items || []);
    const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null)).filter(Boolean);
    if (entries.length) await Promise.all(entries.map((en) => readEntry(en, out)));
    else Array.from(e.dataTransfer.files).forEach((f) => out.push({ file: f, path: f.name }));
    files.value = "";
    folder.value = "";
    choose(out);
  });

  // --- sending ------------------------------------------------------------------------------------
  function batches(list) {
    const out = [];
    let current = [];
    let bytes = 0;
    list.forEach((item) => {
      if (current.length && (current.length >= BATCH_FILES || bytes + item.file.size > BATCH_BYTES)) {
        out.push(current);
        current = [];
        bytes = 0;
      }
      current.push(item);
      bytes += item.file.size;
    });
    if (current.length) out.push(current);
    return out;
  }

  function send(batch, onProgress) {
    const data = new FormData();
    form.querySelectorAll("input[type=hidden], input[type=radio]:checked, input[name=label]").forEach((input) => {
      if (input.name) data.append(input.name, input.value);
    });
    batch.forEach((item) => data.append("files", item.file, item.path));
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
      xhr.addEventListener("load", () => {
        if (xhr.status === 200) {
          try { resolve({ ok: true, report: JSON.parse(xhr.responseText) }); return; } catch (_) { /* below */ }
        }
        resolve({ ok: false, status: xhr.status, message: pageMessage(xhr.responseText) });
      });
      xhr.addEventListener("error", () => resolve({ ok: false, status: 0, message: "the server could not be reached" }));
      xhr.send(data);
    });
  }

  function pageMessage(html) {
    const doc = new DOMParser().parseFromString(html || "", "text/html");
    const title = doc.querySelector("#error h1");
    const text = doc.querySelector("#error p");
    return [title && title.textContent, text && text.textContent].filter(Boolean).join(": ") || "the upload failed";
  }

  function addIssue(ref, text) {
    const li = document.createElement("li");
    const name = document.createElement("strong");
    name.textContent = ref;
    li.append(name, document.createTextNode(`: ${text}`));
    issues.append(li);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (busy) return;
    if (!pending.length) {
      chosenText.textContent = "Choose images or a folder first (or drop them here).";
      files.focus();
      return;
    }
    busy = true;
    button.disabled = true;
    box.hidden = false;
    issues.replaceChildren();
    const totals = { imported: 0, skipped: 0, failed: 0 };
    const list = pending;
    const tooBig = list.filter((item) => item.file.size > maxBytes);
    tooBig.forEach((item) => { totals.failed += 1; addIssue(item.path, `larger than ${Math.round(maxBytes / 1048576)} MB`); });
    const todo = list.filter((item) => item.file.size <= maxBytes);
    const totalBytes = todo.reduce((n, item) => n + item.file.size, 0) || 1;
    let sentBytes = 0;
    let stopped = "";
    for (const batch of batches(todo)) {
      const size = batch.reduce((n, item) => n + item.file.size, 0);
      status.textContent = `Uploading… ${totals.imported + totals.skipped + totals.failed} of ${list.length}`;
      const result = await send(batch, (f) => { bar.value = (sentBytes + f * size) / totalBytes; });
      sentBytes += size;
      bar.value = sentBytes / totalBytes;
      if (!result.ok) {
        stopped = result.message;
        if (result.status === 401 || result.status === 403) break; // signed out or refused: stop here
        batch.forEach((item) => addIssue(item.path, result.message));
        totals.failed += batch.length;
        continue;
      }
      const r = result.report;
      totals.imported += r.imported;
      totals.skipped += r.skipped;
      totals.failed += r.failed;
      r.issues.forEach((i) => addIssue(i.ref, i.text));
    }
    bar.value = 1;
    const parts = [`${totals.imported} added`];
    if (totals.skipped) parts.push(`${totals.skipped} skipped (already in the project)`);
    if (totals.failed) parts.push(`${totals.failed} could not be added`);
    status.textContent = (stopped && !totals.imported ? `Upload stopped: ${stopped}. ` : "Done: ") + parts.join(", ") + ".";
    status.dataset.done = "1";
    pending = [];
    files.value = "";
    folder.value = "";
    chosenText.textContent = "";
    busy = false;
    button.disabled = false;
    if (totals.imported) refreshBrowser();
  });

  // the counts and thumbnails below, without losing the report above
  function refreshBrowser() {
    if (window.htmx) {
      window.htmx.ajax("GET", window.location.pathname + window.location.search, { target: "#browser", select: "#browser", swap: "outerHTML" });
    } else {
      const link = document.createElement("a");
      link.href = window.location.href;
      link.textContent = "Show the new images";
      status.append(" ", link);
    }
  }
})();
