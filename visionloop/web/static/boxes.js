// The console's box editor for one image of an object-detection project: the review page's canvas tool
// (drag to draw a box for the chosen label, label colours from the .cN swatches) plus editing: click a box
// to select it, drag it to move it, drag its corner to resize it; the keyboard does all of it too.
// Boxes are kept in ratios of the image size (Rekognition's convention) in the form's hidden field.
"use strict";

(() => {
  const form = document.getElementById("boxes-form");
  const canvas = document.getElementById("canvas");
  const image = document.getElementById("image");
  if (!form || !canvas || !image) return;
  const field = document.getElementById("boxes");
  const list = document.getElementById("box-list");
  const labelSet = document.getElementById("box-labels");
  const data = JSON.parse(document.getElementById("entry-data").textContent);
  const boxes = data.boxes.map((b) => ({ ...b }));
  const HANDLE = 10; // css pixels around a corner that grab it
  const round = (v) => Math.round(v * 10000) / 10000;
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
  let selected = -1;
  let gesture = null; // {kind: draw|move|resize, start, box, original}

  // --- labels ---------------------------------------------------------------------------------------
  const radios = () => Array.from(labelSet.querySelectorAll('input[name="box_label"]'));
  const chosenLabel = () => { const r = radios().find((x) => x.checked); return r ? r.value : ""; };
  const colour = (label) => {
    const radio = radios().find((r) => r.value === label);
    const swatch = radio && radio.parentElement.querySelector(".swatch");
    return swatch ? getComputedStyle(swatch).backgroundColor : "#ffd400";
  };
  function addLabel(name) {
    const value = name.trim();
    if (!value) return;
    const existing = radios().find((r) => r.value === value);
    if (existing) { existing.checked = true; return; }
    const n = radios().length;
    const label = document.createElement("label");
    label.className = `choice c${n % 8}`;
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "box_label";
    input.value = value;
    input.checked = true;
    if (n < 9) input.dataset.key = String(n + 1);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    const text = document.createElement("span");
    text.textContent = value;
    label.append(input, swatch, text);
    if (n < 9) { const k = document.createElement("kbd"); k.textContent = String(n + 1); label.append(k); }
    labelSet.append(label);
    redraw();
  }
  const newLabel = document.getElementById("add-box-label");
  const newLabelInput = document.getElementById("new-box-label");
  newLabel.addEventListener("click", () => { addLabel(newLabelInput.value); newLabelInput.value = ""; });
  newLabelInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); newLabel.click(); }
  });
  labelSet.addEventListener("change", () => {
    if (selected >= 0 && chosenLabel()) { boxes[selected].label = chosenLabel(); redraw(); }
  });

  // --- drawing --------------------------------------------------------------------------------------
  function sync() { field.value = JSON.stringify(boxes.map((b) => ({ label: b.label, left: round(b.left), top: round(b.top), width: round(b.width), height: round(b.height) }))); }

  function redraw() {
    sync();
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    ctx.clearRect(0, 0, w, h);
    const all = gesture && gesture.kind === "draw" ? boxes.concat([gesture.box]) : boxes;
    all.forEach((b, i) => {
      const isSelected = i === selected;
      ctx.lineWidth = Math.max(2, w / 300) * (isSelected ? 2 : 1);
      ctx.strokeStyle = colour(b.label);
      ctx.setLineDash(gesture && b === gesture.box && gesture.kind === "draw" ? [6, 4] : []);
      ctx.strokeRect(b.left * w, b.top * h, b.width * w, b.height * h);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${Math.max(12, Math.round(w / 45))}px system-ui, sans-serif`;
      ctx.fillText(b.label, b.left * w + 4, Math.max(14, b.top * h - 4));
      if (isSelected) {
        const s = HANDLE * (window.devicePixelRatio || 1);
        ctx.fillRect((b.left + b.width) * w - s / 2, (b.top + b.height) * h - s / 2, s, s);
      }
    });
    list.replaceChildren(...boxes.map((b, i) => {
      const li = document.createElement("li");
      if (i === selected) li.className = "selected";
      const pick = document.createElement("button");
      pick.type = "button";
      pick.className = "link";
      pick.textContent = `${b.label}: ${Math.round(b.width * data.width)}×${Math.round(b.height * data.height)} at ` +
        `${Math.round(b.left * data.width)},${Math.round(b.top * data.height)}`;
      pick.addEventListener("click", () => { selected = i; canvas.focus(); redraw(); });
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.setAttribute("aria-label", `remove box ${i + 1} (${b.label})`);
      remove.addEventListener("click", () => { boxes.splice(i, 1); selected = -1; redraw(); });
      li.append(pick, remove);
      return li;
    }));
  }

  function resize() {
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(image.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(image.clientHeight * ratio));
    redraw();
  }
  function point(e) {
    const r = canvas.getBoundingClientRect();
    return { x: clamp((e.clientX - r.left) / r.width, 0, 1), y: clamp((e.clientY - r.top) / r.height, 0, 1), r };
  }
  function hit(p) {
    for (let i = boxes.length - 1; i >= 0; i -= 1) {
      const b = boxes[i];
      const cx = (b.left + b.width) * p.r.width;
      const cy = (b.top + b.height) * p.r.height;
      if (i === selected && Math.abs(p.x * p.r.width - cx) <= HANDLE && Math.abs(p.y * p.r.height - cy) <= HANDLE) {
        return { index: i, corner: true };
      }
      if (p.x >= b.left && p.x <= b.left + b.width && p.y >= b.top && p.y <= b.top + b.height) {
        return { index: i, corner: false };
      }
    }
    return null;
  }

  canvas.addEventListener("pointerdown", (e) => {
    const p = point(e);
    const found = hit(p);
    canvas.setPointerCapture(e.pointerId);
    if (found && (found.corner || found.index === selected)) {
      const b = boxes[found.index];
      gesture = { kind: found.corner ? "resize" : "move", start: p, box: b, original: { ...b } };
    } else if (found) {
      selected = found.index;
      gesture = { kind: "move", start: p, box: boxes[found.index], original: { ...boxes[found.index] } };
    } else {
      if (!chosenLabel()) { newLabelInput.focus(); return; }
      selected = -1;
      gesture = { kind: "draw", start: p, box: { label: chosenLabel(), left: p.x, top: p.y, width: 0, height: 0 } };
    }
    redraw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!gesture) return;
    const p = point(e);
    const b = gesture.box;
    const o = gesture.original;
    if (gesture.kind === "draw") {
      b.left = Math.min(gesture.start.x, p.x);
      b.top = Math.min(gesture.start.y, p.y);
      b.width = Math.abs(p.x - gesture.start.x);
      b.height = Math.abs(p.y - gesture.start.y);
    } else if (gesture.kind === "move") {
      b.left = clamp(o.left + p.x - gesture.start.x, 0, 1 - o.width);
      b.top = clamp(o.top + p.y - gesture.start.y, 0, 1 - o.height);
    } else {
      b.width = clamp(o.width + p.x - gesture.start.x, 0.01, 1 - o.left);
      b.height = clamp(o.height + p.y - gesture.start.y, 0.01, 1 - o.top);
    }
    redraw();
  });
  const finish = () => {
    if (!gesture) return;
    const g = gesture;
    gesture = null;
    if (g.kind === "draw" && g.box.width > 0.01 && g.box.height > 0.01) {
      boxes.push({ ...g.box, width: Math.min(g.box.width, 1 - g.box.left), height: Math.min(g.box.height, 1 - g.box.top) });
      selected = boxes.length - 1;
    }
    redraw();
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", () => { gesture = null; redraw(); });

  // --- keyboard (on the canvas) ---------------------------------------------------------------------
  canvas.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const step = 0.01;
    const b = selected >= 0 ? boxes[selected] : null;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (/^[1-9]$/.test(e.key)) {
      const radio = radios().find((r) => r.dataset.key === e.key);
      if (radio) { e.preventDefault(); radio.checked = true; radio.dispatchEvent(new Event("change", { bubbles: true })); }
    } else if (e.key === "n" || e.key === "N") {
      if (!chosenLabel()) return;
      e.preventDefault();
      boxes.push({ label: chosenLabel(), left: 0.35, top: 0.35, width: 0.3, height: 0.3 });
      selected = boxes.length - 1;
      redraw();
    } else if (e.key === "Tab" && boxes.length && !(e.shiftKey && selected <= 0) && !(!e.shiftKey && selected === boxes.length - 1)) {
      e.preventDefault(); // cycle through the boxes, then leave the canvas as usual
      selected = e.shiftKey ? selected - 1 : selected + 1;
      redraw();
    } else if (b && moves[e.key]) {
      e.preventDefault();
      const [dx, dy] = moves[e.key];
      if (e.shiftKey) {
        b.width = clamp(b.width + dx, 0.01, 1 - b.left);
        b.height = clamp(b.height + dy, 0.01, 1 - b.top);
      } else {
        b.left = clamp(b.left + dx, 0, 1 - b.width);
        b.top = clamp(b.top + dy, 0, 1 - b.height);
      }
      redraw();
    } else if (b && (e.key === "Delete" || e.key === "Backspace")) {
      e.preventDefault();
      boxes.splice(selected, 1);
      selected = Math.min(selected, boxes.length - 1);
      redraw();
    } else if (e.key === "Escape") {
      selected = -1;
      redraw();
    }
  });

  form.addEventListener("submit", sync);
  if (image.complete) resize();
  image.addEventListener("load", resize);
  window.addEventListener("resize", resize);
})();
