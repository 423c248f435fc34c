// The search page, enhanced. Without this script the page is a plain GET form for text.
//
// A query is the text in the bar plus "parts" shown as chips: images (picked, pasted or dropped),
// recordings (the microphone) and example items ("More like this"), each with a weight. Files
// are uploaded once to the session (POST query-uploads -> ref); the URL names them by ref, so a
// search can be reloaded, paged and refined without uploading again. Searching is navigation to
// the GET URL, so the server renders the results and the address bar always holds the query.
// Everything shown from user data is set with textContent, never parsed as HTML.
import { resultsStale, transcriptInBar } from "./results.js";

const form = document.getElementById("search-form");
const bar = document.getElementById("id_q");
const chipList = document.getElementById("chips");
const messages = document.getElementById("messages");
const fileInput = document.getElementById("file-input");
const micButton = document.getElementById("mic");
const micTimer = document.getElementById("mic-timer");
const chipInfo = JSON.parse(document.getElementById("chip-info").textContent);
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const limits = {
  image: Number(form.dataset.maxImageBytes),
  voice: Number(form.dataset.maxVoiceBytes),
  voiceSeconds: Number(form.dataset.maxVoiceSeconds),
};
// Fields that make up the query itself; every other named control is a filter or an option.
const QUERY_FIELDS = new Set(["q", "parts", "text_weight", "item", "item_weight"]);
const LABELS = { text: "Text", image: "Image", voice: "Voice", item: "More like" };

let parts = [];        // {type, weight, value?, ref?, name?, previewUrl?, transcript?, title?, pending?, inBar?}
let textWeight = 1;    // the weight of the text in the bar (from a voice part whose transcript went there)
let shownQuery = "";   // the query the results on the page are for, as querySent() says it

// ---------------------------------------------------------------- state from the page

function initialParts() {
  let raw = [];
  const field = document.getElementById("id_parts");
  if (field.value) {
    try {
      raw = JSON.parse(field.value);
    } catch {
      raw = [];  // the server already says what is wrong with it
    }
  }
  const list = Array.isArray(raw) ? raw.filter((part) => part && typeof part === "object") : [];
  const item = document.getElementById("id_item");
  if (item) {
    const weight = document.getElementById("id_item_weight");
    list.push({ type: "item", value: item.value, weight: weight ? Number(weight.value) : 1 });
    item.remove();
    weight?.remove();
  }
  const textWeightField = document.getElementById("id_text_weight");
  if (textWeightField) {
    textWeight = Number(textWeightField.value) || 1;
    textWeightField.remove();
  }
  return list.map((part) => {
    const weight = typeof part.weight === "number" ? part.weight : 1;
    const base = { type: String(part.type), weight };
    if (part.ref) {
      const upload = chipInfo.uploads[part.ref] || {};
      return { ...base, ref: String(part.ref), name: upload.name || part.type,
               previewUrl: upload.type === "image" ? upload.preview_url : null, transcript: upload.transcript };
    }
    if (part.type === "item") {
      const item = chipInfo.items[String(part.value)] || {};
      return { ...base, value: String(part.value), title: item.title || `item ${part.value}`,
               previewUrl: item.thumbnail_url || null };
    }
    return { ...base, value: part.value == null ? "" : String(part.value) };
  });
}

// A recording's transcript goes into the empty bar, so it can be edited and searched again.
function transcriptToBar() {
  if (bar.value.trim()) return;
  const voice = parts.find((part) => part.type === "voice" && part.transcript && part.transcript.text);
  if (!voice) return;
  bar.value = voice.transcript.text;
  voice.inBar = true;
  textWeight = voice.weight;
  transcriptInBar(voice.transcript.text);
}

// ---------------------------------------------------------------- chips

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
const ICON_PATHS = {
  voice: ["M12 3a3 3 0 0 1 3 3v5a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3z", "M5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21"],
  image: ["M5.5 5h13A2.5 2.5 0 0 1 21 7.5v9a2.5 2.5 0 0 1-2.5 2.5h-13A2.5 2.5 0 0 1 3 16.5v-9A2.5 2.5 0 0 1 5.5 5z",
          "M4.5 17.5l5-5 3.5 3.5 2.5-2.5 4 4"],
  text: ["M5 6h14M12 6v13"],
  item: ["M4 9c2.5-3 5.5-3 8 0s5.5 3 8 0M4 15c2.5-3 5.5-3 8 0s5.5 3 8 0"],
};

function icon(type) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  for (const data of ICON_PATHS[type] || ICON_PATHS.text) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", data);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    svg.append(path);
  }
  return svg;
}

function chipText(part) {
  if (part.type === "text") return `“${part.value}”`;
  if (part.type === "image") return part.pending ? `${part.name} — uploading…` : part.name;
  if (part.type === "voice") {
    if (part.pending) return "Recording — uploading…";
    return part.transcript ? "your recording" : part.name || "Recording";  // its words show once: bar or note
  }
  return `“${part.title}”`;
}

function renderChips() {
  chipList.replaceChildren();
  parts.forEach((part, index) => {
    const kind = part.type === "item" && part.weight < 0 ? "Less like" : LABELS[part.type] || part.type;
    const description = `${kind} ${chipText(part)}`;
    const chip = element("li", { class: `chip chip-${part.type}`, "data-type": part.type });
    chip.classList.toggle("negative", part.weight < 0);
    chip.classList.toggle("pending", Boolean(part.pending));
    if (part.previewUrl) {
      chip.append(element("img", { class: "chip-preview", src: part.previewUrl, alt: "" }));
    } else {
      const badge = element("span", { class: "chip-icon" });
      badge.append(icon(part.type));
      chip.append(badge);
    }
    const label = element("span", { class: "chip-label", title: description });
    label.append(element("small", {}, `${kind} `), document.createTextNode(chipText(part)));
    chip.append(label);

    const weightLabel = element("label", { class: "chip-weight" });
    weightLabel.append(element("span", { "aria-hidden": "true" }, "weight"),
                       element("span", { class: "visually-hidden" }, `Weight of ${description}`));
    const weight = element("input", { type: "number", step: "0.1", min: "-10", max: "10", inputmode: "decimal",
                                      value: String(part.weight), "data-part": String(index) });
    weight.addEventListener("input", () => {
      if (!Number.isNaN(weight.valueAsNumber)) {
        part.weight = weight.valueAsNumber;
        chip.classList.toggle("negative", part.weight < 0);
        staleCheck();
      }
    });
    weightLabel.append(weight);
    chip.append(weightLabel);

    const remove = element("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${description}`,
                                       title: "Remove this part" }, "✕");
    remove.addEventListener("click", () => {
      parts.splice(parts.indexOf(part), 1);
      if (part.inBar) {
        bar.value = "";
        textWeight = 1;
      }
      renderChips();
      staleCheck();
      bar.focus();
    });
    chip.append(remove);
    chipList.append(chip);
  });
  chipList.hidden = parts.length === 0;
}

// ---------------------------------------------------------------- messages

function say(text, kind = "error") {
  const message = element("p", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  messages.replaceChildren(message);
}

function clearMessages() {
  messages.replaceChildren();
}

// ---------------------------------------------------------------- searching

function queryParams() {
  const params = new URLSearchParams();
  const text = bar.value.trim();
  let sent = parts;
  let weightOfText = textWeight;
  const inBar = parts.find((part) => part.inBar);
  if (inBar) {
    if (text) {
      sent = parts.filter((part) => part !== inBar);  // the (edited) transcript replaces the recording
      weightOfText = inBar.weight;
    } else {
      weightOfText = 1;
    }
  }
  if (text) {
    params.set("q", text);
    if (weightOfText !== 1) params.set("text_weight", String(weightOfText));
  }
  if (sent.length) {
    params.set("parts", JSON.stringify(sent.map((part) => {
      const out = { type: part.type };
      if (part.ref) out.ref = part.ref;
      else out.value = part.type === "item" ? Number(part.value) : part.value;
      if (part.weight !== 1) out.weight = part.weight;
      return out;
    })));
  }
  for (const control of form.elements) {
    if (!control.name || QUERY_FIELDS.has(control.name) || !control.value) continue;
    params.set(control.name, control.value);
  }
  return { params, empty: !text && sent.length === 0 };
}

// The query part of what a search would send now (parts, text, weights; not the filters).
function querySent() {
  const { params } = queryParams();
  return [...params].filter(([name]) => QUERY_FIELDS.has(name)).map(([name, value]) => `${name}=${value}`).join("&");
}

// Changed weights or removed chips leave the results on the page behind the query: say so until searched.
function staleCheck() {
  resultsStale(querySent() !== shownQuery);
}

function search() {
  if (parts.some((part) => part.pending)) {
    say("Wait a moment: a file is still uploading.", "notice");
    return;
  }
  const { params, empty } = queryParams();
  if (empty) {
    say("Type what you are looking for, or add an image or a voice recording.", "notice");
    bar.focus();
    return;
  }
  window.location.assign(`${form.action.split("?")[0]}?${params}`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  search();
});

document.getElementById("add-text-part").addEventListener("click", () => {
  const text = bar.value.trim();
  if (!text) {
    say("Type a text first; it then becomes a part with its own weight.", "notice");
    bar.focus();
    return;
  }
  const inBar = parts.find((part) => part.inBar);
  if (inBar) parts.splice(parts.indexOf(inBar), 1);
  parts.push({ type: "text", value: text, weight: inBar ? inBar.weight : textWeight });
  textWeight = 1;
  bar.value = "";
  clearMessages();
  renderChips();
  bar.focus();
});

// ---------------------------------------------------------------- files: pick, paste, drop

function fileType(file) {
  if (file.type.startsWith("image/")) return "image";
  if (file.type.startsWith("audio/") || file.type === "video/webm") return "voice";
  return null;
}

function megabytes(bytes) {
  return `${(bytes / 1024 / 1024).toFixed(bytes < 1024 * 1024 ? 2 : 1)} MB`;
}

async function addFile(file, type = fileType(file)) {
  if (!type) {
    say(`“${file.name || "that file"}” is not an image or a recording: use a JPEG, PNG, WebP or GIF image, `
        + "or WAV, MP3, Ogg, WebM or M4A audio.");
    return;
  }
  if (file.size > limits[type]) {
    say(`“${file.name}” is ${megabytes(file.size)}; the limit for ${type === "image" ? "an image" : "a recording"} `
        + `is ${megabytes(limits[type])}.`);
    return;
  }
  clearMessages();
  const part = { type, weight: 1, name: file.name || type, pending: true,
                 previewUrl: type === "image" ? URL.createObjectURL(file) : null };
  parts.push(part);
  renderChips();
  const body = new FormData();
  body.append("type", type);
  body.append("file", file, file.name || (type === "image" ? "pasted.png" : "recording.webm"));
  let response;
  let answer = null;
  try {
    response = await fetch(form.dataset.uploadUrl, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
    });
    answer = await response.json().catch(() => null);
  } catch {
    dropPart(part);
    say("The server could not be reached. Check the connection and try again.");
    return;
  }
  if (!response.ok || !answer || !answer.ref) {
    dropPart(part);
    say(uploadError(response.status, answer));
    return;
  }
  part.ref = answer.ref;
  part.name = answer.name;
  part.pending = false;
  renderChips();
  search();
}

function uploadError(status, answer) {
  if (answer && answer.error) return answer.error;
  if (status === 403) return "Your session has expired: reload the page and add the file again.";
  if (status === 413) return "That file is too large.";
  if (status >= 500) return `The server had a problem with that file (HTTP ${status}). Please try again.`;
  return `The file could not be added (HTTP ${status}).`;
}

function dropPart(part) {
  const index = parts.indexOf(part);
  if (index >= 0) parts.splice(index, 1);
  if (part.previewUrl && part.previewUrl.startsWith("blob:")) URL.revokeObjectURL(part.previewUrl);
  renderChips();
}

document.getElementById("pick-file").addEventListener("click", () => fileInput.click());
fileInput.addEventListener("change", () => {
  const [file] = fileInput.files;
  if (file) addFile(file);
  fileInput.value = "";
});

document.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files || [])];
  if (!files.length) return;  // plain text pastes into the bar as usual
  event.preventDefault();
  addFile(files[0]);
});

let dragDepth = 0;
const overlay = element("div", { class: "drop-overlay", hidden: "" }, "Drop an image or a recording to search with it");
document.body.append(overlay);
const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  overlay.hidden = false;
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) overlay.hidden = true;
});
document.addEventListener("dragover", (event) => {
  if (carriesFiles(event)) event.preventDefault();
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  overlay.hidden = true;
  const [file] = event.dataTransfer.files;
  if (file) addFile(file);
});

// ---------------------------------------------------------------- the microphone

let recorder = null;
let recordingStarted = 0;
let timerId = null;

function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function recordingType() {
  const types = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];
  return types.find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

function micState(state) {
  micButton.classList.toggle("recording", state === "recording");
  micButton.classList.toggle("busy", state === "starting");
  micButton.setAttribute("aria-pressed", String(state === "recording"));
  micButton.setAttribute("aria-label", state === "recording" ? "Stop recording and search" : "Search by voice: start recording");
  micButton.title = state === "recording" ? "Stop recording" : "Search by voice";
  micTimer.hidden = state !== "recording";
}

async function recordStart() {
  if (!navigator.mediaDevices?.getUserMedia || !window.MediaRecorder) {
    say("This browser cannot record audio here (it needs a secure page, https or localhost).");
    return;
  }
  micState("starting");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    micState("idle");
    say(error.name === "NotAllowedError"
      ? "Microphone access was refused. Allow it in the browser's site settings to search by voice."
      : error.name === "NotFoundError" ? "No microphone was found." : `The microphone could not be opened (${error.name}).`);
    return;
  }
  const mimeType = recordingType();
  const chunks = [];
  recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  recorder.addEventListener("dataavailable", (event) => {
    if (event.data.size) chunks.push(event.data);
  });
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    clearInterval(timerId);
    micState("idle");
    const type = (recorder.mimeType || mimeType || "audio/webm").split(";")[0];
    recorder = null;
    const blob = new Blob(chunks, { type });
    if (!blob.size) {
      say("Nothing was recorded. Check the microphone and try again.");
      return;
    }
    const extension = { "audio/ogg": "ogg", "audio/mp4": "m4a" }[type] || "webm";
    addFile(new File([blob], `recording.${extension}`, { type }), "voice");
  });
  recorder.start(250);
  recordingStarted = performance.now();
  micTimer.textContent = "0:00";
  micState("recording");
  say("Recording… press the microphone again to stop.", "notice");
  timerId = setInterval(() => {
    const seconds = (performance.now() - recordingStarted) / 1000;
    micTimer.textContent = clock(seconds);
    if (seconds >= limits.voiceSeconds && recorder && recorder.state === "recording") recorder.stop();
  }, 250);
}

micButton.addEventListener("click", () => {
  if (recorder && recorder.state === "recording") {
    recorder.stop();
    clearMessages();
  } else if (!recorder) {
    recordStart();
  }
});

// ---------------------------------------------------------------- keyboard

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest("input, textarea, select, [contenteditable]")) return;
  event.preventDefault();
  bar.focus();
  bar.select();
});

// ---------------------------------------------------------------- start

parts = initialParts();
transcriptToBar();
renderChips();
shownQuery = querySent();
for (const node of document.querySelectorAll(".js-only")) node.hidden = false;
form.dataset.ready = "true";  // tests wait for this before typing
