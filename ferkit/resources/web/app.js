// ferkit web page: photos (drop or pick) and the webcam, sent to this server's /v1/predict; boxes, labels and
// per-expression bars drawn over the image. Plain JavaScript, no library, nothing loaded from elsewhere.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { models: [], model: null, apiKey: localStorage.getItem("ferkit.apiKey") || "", webcam: null };
const MAX_PARALLEL = 4;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function status(text) { $("#status").textContent = text || ""; }

function headers(extra = {}) {
  return state.apiKey ? { ...extra, "X-API-Key": state.apiKey } : extra;
}

async function errorText(resp) {
  try {
    const body = await resp.json();
    return (body.error && body.error.message) || `HTTP ${resp.status}`;
  } catch (e) {
    return `HTTP ${resp.status}`;
  }
}

// ---- models ---------------------------------------------------------------------------------------------------
async function loadModels() {
  const resp = await fetch("v1/models", { headers: headers() });
  if (resp.status === 401) {
    $("#apikey-form").hidden = false;
    status("Enter the API key of this server.");
    return;
  }
  if (!resp.ok) { status(`Cannot list models: ${await errorText(resp)}`); return; }
  $("#apikey-form").hidden = true;
  const body = await resp.json();
  state.models = body.models;
  const select = $("#model");
  select.replaceChildren(...body.models.map((m) => {
    const opt = el("option", "", m.name);
    opt.value = m.name;
    opt.disabled = m.state !== "ready" && m.state !== "loading";
    return opt;
  }));
  select.value = state.model && body.models.some((m) => m.name === state.model) ? state.model : body.default;
  selectModel(select.value);
  if (body.models.some((m) => m.state === "loading")) setTimeout(loadModels, 2000);
}

function currentModel() { return state.models.find((m) => m.name === state.model) || null; }

function selectModel(name) {
  state.model = name;
  const m = currentModel();
  if (!m) return;
  const parts = [m.arch, m.detector && `detector ${m.detector}`, m.input_size && `${m.input_size}px`,
                 m.label_names && `${m.label_names.length} expressions`, m.state !== "ready" && m.state];
  $("#model-info").textContent = parts.filter(Boolean).join(" · ");
  const warning = $("#warning");
  if (m.weights === "untrained") {
    warning.textContent = `Model ${m.name} has untrained (random) weights: its expressions are meaningless. ` +
      "Start the server with a trained model (ferkit serve --model NAME --checkpoint FILE).";
    warning.hidden = false;
  } else if (m.state === "failed") {
    warning.textContent = `Model ${m.name} failed to load: ${m.error}`;
    warning.hidden = false;
  } else {
    warning.hidden = true;
  }
}

function colour(label) {
  const m = currentModel();
  return (m && m.colours && m.colours[label]) || "#00ff00";
}

// ---- requests -------------------------------------------------------------------------------------------------
function predictUrl() {
  const params = new URLSearchParams({ detect: $("#detect").checked ? "true" : "false" });
  if (state.model) params.set("model", state.model);
  return `v1/predict?${params}`;
}

async function predict(body, contentType) {
  const opts = { method: "POST", body, headers: headers(contentType ? { "Content-Type": contentType } : {}) };
  const resp = await fetch(predictUrl(), opts);
  if (resp.status === 401) { $("#apikey-form").hidden = false; }
  if (!resp.ok) throw new Error(await errorText(resp));
  return (await resp.json()).records[0];
}

// ---- drawing --------------------------------------------------------------------------------------------------
function drawFaces(stage, side, record, width, height) {
  const overlay = $(".overlay", stage);
  const boxes = record.faces.map((face, i) => {
    const [x1, y1, x2, y2] = face.box;
    const box = el("div", "face-box");
    box.dataset.label = face.label;
    box.dataset.index = i;
    box.style.left = `${(100 * x1) / width}%`;
    box.style.top = `${(100 * y1) / height}%`;
    box.style.width = `${(100 * (x2 - x1)) / width}%`;
    box.style.height = `${(100 * (y2 - y1)) / height}%`;
    box.style.borderColor = colour(face.label);
    if (y1 < 0.06 * height) box.classList.add("low");
    const label = el("div", "face-label", `${face.label} ${face.label_score.toFixed(2)}`);
    label.style.background = colour(face.label);
    box.append(label);
    return box;
  });
  overlay.replaceChildren(...boxes);
  const faces = $(".faces", side);
  faces.replaceChildren(...record.faces.map((face, i) => faceCard(face, i)));
  if (!record.faces.length) faces.append(el("div", "muted", record.error ? "" : "no face found"));
}

function faceCard(face, index) {
  const card = el("div", "face-card");
  const head = el("div", "head");
  head.append(el("span", "", `face ${index + 1}: ${face.label}`), el("span", "muted", `detection ${face.score.toFixed(2)}`));
  card.append(head);
  for (const [name, p] of Object.entries(face.scores)) {
    const row = el("div", name === face.label ? "bar-row top" : "bar-row");
    row.dataset.label = name;
    const bar = el("div", "bar");
    const fill = el("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.background = colour(name);
    bar.append(fill);
    row.append(el("span", "name", name), bar, el("span", "value", p.toFixed(2)));
    card.append(row);
  }
  return card;
}

// ---- photos ---------------------------------------------------------------------------------------------------
function photoCard(file) {
  const card = el("section", "result");
  card.dataset.status = "pending";
  const stage = el("div", "stage");
  const img = el("img");
  img.alt = file.name;
  img.src = URL.createObjectURL(file);
  stage.append(img, el("div", "overlay"));
  const side = el("div", "side");
  side.append(el("div", "title", file.name), el("div", "message muted", "recognising..."), el("div", "faces"));
  card.append(stage, side);
  return { card, stage, side, img };
}

async function recognisePhoto(file) {
  const view = photoCard(file);
  $("#results").prepend(view.card);
  const loaded = view.img.decode().catch(() => null);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const record = await predict(form);
    await loaded;
    const width = view.img.naturalWidth || record.faces.reduce((w, f) => Math.max(w, f.box[2]), 1);
    const height = view.img.naturalHeight || record.faces.reduce((h, f) => Math.max(h, f.box[3]), 1);
    drawFaces(view.stage, view.side, record, width, height);
    const n = record.faces.length;
    $(".message", view.side).textContent = record.error || `${n} face${n === 1 ? "" : "s"}`;
    view.card.dataset.status = "done";
    view.card.dataset.faces = String(n);
  } catch (e) {
    $(".message", view.side).textContent = e.message;
    $(".message", view.side).className = "message error";
    view.card.classList.add("failed");
    view.card.dataset.status = "failed";
  }
}

async function handleFiles(fileList) {
  const files = Array.from(fileList);
  if (!files.length) return;
  status(`Recognising ${files.length} image${files.length === 1 ? "" : "s"}...`);
  let next = 0;
  const worker = async () => { while (next < files.length) await recognisePhoto(files[next++]); };
  await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL, files.length) }, worker));
  status("");
}

// ---- webcam ---------------------------------------------------------------------------------------------------
async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status("The webcam needs a secure page: open this server on localhost or over HTTPS.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
  } catch (e) {
    status(`Cannot use the webcam: ${e.message}`);
    return;
  }
  const video = $("#video");
  video.srcObject = stream;
  await video.play().catch(() => null);
  state.webcam = { stream, frames: 0, started: performance.now(), canvas: document.createElement("canvas") };
  $("#webcam").hidden = false;
  $("#webcam").dataset.frames = "0";
  $("#webcam-start").hidden = true;
  $("#webcam-stop").hidden = false;
  webcamLoop();
}

function stopWebcam() {
  if (!state.webcam) return;
  state.webcam.stream.getTracks().forEach((t) => t.stop());
  state.webcam = null;
  $("#webcam-start").hidden = false;
  $("#webcam-stop").hidden = true;
}

async function webcamLoop() {
  const cam = state.webcam;
  if (!cam) return;
  const video = $("#video");
  if (video.videoWidth > 0) {
    const { canvas } = cam;
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    try {
      const record = await predict(blob, "image/jpeg");
      if (state.webcam !== cam) return;
      drawFaces($("#webcam .stage"), $("#webcam .side"), record, canvas.width, canvas.height);
      cam.frames += 1;
      $("#webcam").dataset.frames = String(cam.frames);
      const fps = (1000 * cam.frames) / (performance.now() - cam.started);
      $("#webcam-rate").textContent = `${fps.toFixed(1)} frames/s`;
      status("");
    } catch (e) {
      status(`Webcam frame failed: ${e.message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  setTimeout(webcamLoop, video.videoWidth > 0 ? 30 : 200);
}

// ---- wiring ---------------------------------------------------------------------------------------------------
function setup() {
  const drop = $("#drop");
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); });
  }
  drop.addEventListener("drop", (e) => handleFiles(e.dataTransfer.files));
  for (const ev of ["dragover", "drop"]) {  // a photo dropped next to the zone must not replace the page
    window.addEventListener(ev, (e) => e.preventDefault());
  }
  $("#file").addEventListener("change", (e) => { handleFiles(e.target.files); e.target.value = ""; });
  $("#model").addEventListener("change", (e) => selectModel(e.target.value));
  $("#webcam-start").addEventListener("click", startWebcam);
  $("#webcam-stop").addEventListener("click", stopWebcam);
  $("#clear").addEventListener("click", () => $("#results").replaceChildren());
  $("#apikey-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.apiKey = $("#apikey").value.trim();
    localStorage.setItem("ferkit.apiKey", state.apiKey);
    loadModels();
  });
  loadModels().catch((e) => status(`Cannot reach the server: ${e.message}`));
}

document.addEventListener("DOMContentLoaded", setup);
