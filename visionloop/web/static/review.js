// The review item page: keyboard shortcuts and, for detection projects, a box tool on a canvas.
// The page works without this script too (choose a label with the mouse, Submit); boxes need it.
"use strict";

(() => {
  const form = document.getElementById("answer");
  if (!form) return;
  const skipForm = document.getElementById("skip");
  const radios = Array.from(form.querySelectorAll('input[name="label"]'));
  const data = JSON.parse(document.getElementById("item-data").textContent);
  let sent = false;

  // --- local time for the lease ---------------------------------------------------------------------
  const lease = document.getElementById("lease");
  if (lease) {
    const at = new Date(lease.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) {
      lease.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
  }

  // --- submitting once ------------------------------------------------------------------------------
  const chosen = () => radios.find((r) => r.checked) || null;
  const submitOnce = (target) => {
    if (sent) return;
    sent = true;
    document.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    HTMLFormElement.prototype.submit.call(target); // not target.submit: a control may be named "submit"
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!chosen()) return;
    syncBoxes();
    submitOnce(form);
  });
  skipForm.addEventListener("submit", (e) => { e.preventDefault(); submitOnce(skipForm); });
  // the Skip button sits in the answer form's layout but submits the skip form (form="skip")
  const skipButton = document.getElementById("skip-button");
  skipButton.addEventListener("click", (e) => { e.preventDefault(); submitOnce(skipForm); });

  // --- keyboard -------------------------------------------------------------------------------------
  const choose = (radio) => {
    radio.checked = true;
    radio.focus({ preventScroll: true });
    radio.dispatchEvent(new Event("change", { bubbles: true }));
  };
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "radio"))) return;
    if (/^[0-9]$/.test(e.key)) {
      const radio = radios.find((r) => r.dataset.key === e.key);
      if (radio) { e.preventDefault(); choose(radio); }
    } else if (e.key === "Enter") {
      if (t && t.tagName === "BUTTON") return; // the focused button does its own thing
      e.preventDefault();
      if (chosen()) form.requestSubmit();
      else radios[0].focus();
    } else if (e.key === "s" || e.key === "S") {
      e.preventDefault();
      submitOnce(skipForm);
    } else if ((e.key === "Backspace" || e.key === "Delete") && data.boxes && boxes.length) {
      e.preventDefault();
      boxes.pop();
      redraw();
    }
  });

  // --- boxes (detection projects) -------------------------------------------------------------------
  const boxes = [];
  const canvas = document.getElementById("canvas");
  const image = document.getElementById("image");
  const list = document.getElementById("box-list");
  const boxesField = document.getElementById("boxes");
  const colours = {};
  form.querySelectorAll("label.choice").forEach((label) => {
    const input = label.querySelector("input");
    const swatch = label.querySelector(".swatch");
    if (input && swatch) colours[input.value] = getComputedStyle(swatch).backgroundColor;
  });
  const round = (v) => Math.round(v * 10000) / 10000;

  function syncBoxes() {
    const choice = chosen();
    const none = choice && choice.dataset.none;
    boxesField.value = data.boxes && !none ? JSON.stringify(boxes) : "";
  }

  function redraw() {
    syncBoxes();
    if (!canvas) return;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const w = canvas.width;
    const h = canvas.height;
    const all = drag ? boxes.concat([drag]) : boxes;
    all.forEach((b) => {
      ctx.lineWidth = Math.max(2, w / 300);
      ctx.strokeStyle = colours[b.label] || "#ffd400";
      ctx.setLineDash(b === drag ? [6, 4] : []);
      ctx.strokeRect(b.left * w, b.top * h, b.width * w, b.height * h);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = `${Math.max(12, Math.round(w / 45))}px system-ui, sans-serif`;
      ctx.fillText(b.label, b.left * w + 4, Math.max(14, b.top * h - 4));
    });
    if (!list) return;
    list.replaceChildren(...boxes.map((b, i) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.textContent = `${b.label}: ${Math.round(b.width * data.width)}×${Math.round(b.height * data.height)} at ` +
        `${Math.round(b.left * data.width)},${Math.round(b.top * data.height)}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "remove";
      remove.addEventListener("click", () => { boxes.splice(i, 1); redraw(); });
      li.append(text, remove);
      return li;
    }));
  }

  let drag = null;
  let start = null;
  function resize() {
    if (!canvas) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(image.clientWidth * ratio));
    canvas.height = Math.max(1, Math.round(image.clientHeight * ratio));
    redraw();
  }
  function point(e) {
    const r = canvas.getBoundingClientRect();
    return {
      x: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
      y: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)),
    };
  }
  if (canvas && data.boxes) {
    data.suggested.forEach((b) => boxes.push({ ...b })); // the model's boxes, to keep, remove or redraw
    canvas.addEventListener("pointerdown", (e) => {
      const choice = chosen();
      if (!choice || choice.dataset.none) {
        radios[0].focus();
        return;
      }
      canvas.setPointerCapture(e.pointerId);
      start = point(e);
      drag = { label: choice.value, left: start.x, top: start.y, width: 0, height: 0 };
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const p = point(e);
      drag.left = Math.min(start.x, p.x);
      drag.top = Math.min(start.y, p.y);
      drag.width = Math.abs(p.x - start.x);
      drag.height = Math.abs(p.y - start.y);
      redraw();
    });
    const finish = () => {
      if (!drag) return;
      const b = drag;
      drag = null;
      if (b.width > 0.01 && b.height > 0.01) {
        boxes.push({ label: b.label, left: round(b.left), top: round(b.top),
          width: round(Math.min(b.width, 1 - b.left)), height: round(Math.min(b.height, 1 - b.top)) });
      }
      redraw();
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", () => { drag = null; redraw(); });
    if (image.complete) resize();
    image.addEventListener("load", resize);
    window.addEventListener("resize", resize);
  }
  radios.forEach((r) => r.addEventListener("change", redraw));
})();
