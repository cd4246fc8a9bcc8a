// The playground: choose or drop a video (or paste a URL), set the parameters, submit, watch the
// queue and the logs live, then compare input and output. Everything goes through the public API
// a client would use: /storage/upload, the fal queue routes and their SSE status stream.

import { buildForm, requestSchema } from "./form.js";
import { Compare } from "./compare.js";

const $ = (id) => document.getElementById(id);
const SUBMIT_PATH = "/fal-ai/rife/video";
const REQUESTS = "/fal-ai/rife/requests";
const KEY_STORE = "rife-video.key";
const HISTORY_STORE = "rife-video.history";
const HISTORY_MAX = 20;
const PROGRESS_LINE = /Interpolated (\d+)\/(\d+) frames(?: \(([\d.]+) frames\/s\))?/;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const state = {
  form: null,
  file: null, // the chosen File
  fileUrl: null, // its object URL, for the input player
  uploaded: null, // {file, url}: the chosen file's upload, reused when submitting again
  current: null, // request id on screen
  stream: null, // AbortController of the status stream on screen
  localInputs: new Map(), // request id -> object URL of its input, for this page's lifetime
};

// ---- small helpers --------------------------------------------------------------------------

function authHeaders(extra = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { ...extra, Authorization: `Key ${key}` } : extra;
}

function notice(message, kind = "error") {
  const box = $("notice");
  box.hidden = !message;
  box.textContent = message || "";
  box.className = `notice ${kind}`;
}

function fmtBytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i ? v.toFixed(v < 10 ? 2 : 1) : v} ${units[i]}`;
}

const fmtFps = (f) => (f ? `${Number(f.toFixed(3))} fps` : "–");
const fmtSeconds = (s) => (s || s === 0 ? `${s.toFixed(3)} s` : "–");

async function errorMessage(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    return `${resp.status} ${resp.statusText}`;
  }
  if (Array.isArray(body.detail)) return body.detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`).join("\n");
  return body.detail || body.error || `${resp.status} ${resp.statusText}`;
}

function unauthorized(message) {
  $("key-section").hidden = false;
  notice(`${message} This server needs an API key: enter it in the key field, then try again.`);
  $("api-key").focus();
}

/** fetch() with the key; a 401 becomes a message on the page (and an HttpError). */
async function api(path, init = {}) {
  const resp = await fetch(path, { ...init, headers: authHeaders(init.headers || {}), cache: "no-store" });
  if (resp.status === 401) {
    const message = await errorMessage(resp);
    unauthorized(message);
    throw new HttpError(401, message);
  }
  return resp;
}

// ---- the key ---------------------------------------------------------------------------------

function setupKey() {
  const input = $("api-key");
  $("key-section").hidden = document.body.dataset.auth !== "1";
  input.value = sessionStorage.getItem(KEY_STORE) || "";
  input.addEventListener("input", () => {
    const v = input.value.trim();
    v ? sessionStorage.setItem(KEY_STORE, v) : sessionStorage.removeItem(KEY_STORE);
  });
  $("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    input.value = "";
    input.focus();
  });
}

// ---- the input: file, drop, or URL -------------------------------------------------------------

function chooseFile(file) {
  const used = [...state.localInputs.values()].includes(state.fileUrl); // a submitted input stays playable
  if (state.fileUrl && !used) URL.revokeObjectURL(state.fileUrl);
  state.file = file || null;
  state.fileUrl = file ? URL.createObjectURL(file) : null;
  $("file-name").textContent = file ? `${file.name} (${fmtBytes(file.size)})` : "no file chosen";
  $("upload-box").hidden = true;
}

function setupInput() {
  const input = $("file-input");
  const zone = $("drop-zone");
  input.addEventListener("change", () => chooseFile(input.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (!file) return;
    try {
      const dt = new DataTransfer(); // mirror the drop in the file input, so both ways look the same
      dt.items.add(file);
      input.files = dt.files;
    } catch {
      /* older browsers: the drop alone is enough */
    }
    chooseFile(file);
  });
}

/** POST /storage/upload with a progress bar (XMLHttpRequest: fetch reports no upload progress). */
function upload(file) {
  const box = $("upload-box");
  const bar = $("upload-progress");
  const text = $("upload-text");
  box.hidden = false;
  bar.value = 0;
  text.textContent = `0 of ${fmtBytes(file.size)}`;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/storage/upload?file_name=${encodeURIComponent(file.name)}`);
    const headers = authHeaders({ "Content-Type": file.type || "application/octet-stream" });
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      bar.value = e.loaded / e.total;
      text.textContent = `${fmtBytes(e.loaded)} of ${fmtBytes(e.total)}`;
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON: reported below */
      }
      if (xhr.status === 200) {
        bar.value = 1;
        text.textContent = `uploaded ${fmtBytes(body.file_size)}`;
        resolve(body);
        return;
      }
      const message = body.detail || `${xhr.status} ${xhr.statusText}`;
      if (xhr.status === 401) unauthorized(message);
      text.textContent = "upload failed";
      reject(new HttpError(xhr.status, `Upload failed: ${message}`));
    });
    xhr.addEventListener("error", () => reject(new Error("Upload failed: the server could not be reached.")));
    xhr.send(file);
  });
}

// ---- submit -----------------------------------------------------------------------------------

async function onSubmit(event) {
  event.preventDefault();
  notice(null);
  state.form?.clearErrors();
  const { body, problems } = state.form ? state.form.collect() : { body: {}, problems: [] };
  if (problems.length) {
    notice(problems.join("\n"));
    return;
  }
  const button = $("submit");
  button.disabled = true;
  try {
    let input;
    if (state.file) {
      if (state.uploaded?.file !== state.file) state.uploaded = { file: state.file, ...(await upload(state.file)) };
      input = { url: state.uploaded.url, local: state.fileUrl, name: state.file.name, size: state.file.size };
    } else {
      const url = $("video-url").value.trim();
      if (!url) {
        notice("Choose or drop a video, or paste its URL.");
        $("file-input").focus();
        return;
      }
      input = { url, local: null, name: url.startsWith("data:") ? "data: URI" : url.split("/").pop().split("?")[0], size: null };
    }
    const resp = await api(SUBMIT_PATH, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ video_url: input.url, ...body }),
    });
    if (!resp.ok) {
      const detail = await resp.clone().json().catch(() => null);
      if (resp.status === 422 && Array.isArray(detail?.detail)) {
        for (const d of detail.detail) state.form?.markError(d.loc || [], d.msg);
      }
      notice(`The request was refused (${resp.status}): ${await errorMessage(resp)}`);
      return;
    }
    const queued = await resp.json();
    const entry = {
      id: queued.request_id,
      created: Date.now(),
      status: "IN_QUEUE",
      name: input.name,
      input_url: input.url.startsWith("data:") ? null : input.url, // data: URIs are too big to keep
      input_size: input.size,
      sent: body,
    };
    if (input.local) state.localInputs.set(entry.id, input.local);
    saveEntry(entry);
    open(entry);
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 401)) notice(e.message || String(e));
  } finally {
    button.disabled = false;
  }
}

// ---- a request on screen: status stream, logs, progress, cancel --------------------------------

function statusLabel(ev) {
  if (ev.status === "COMPLETED") {
    if (!ev.error) return "Completed";
    return ev.error_type === "cancelled" ? "Cancelled" : `Failed: ${ev.error}`;
  }
  return ev.status === "IN_QUEUE" ? "In queue" : "Running";
}

function historyStatus(ev) {
  if (ev.status !== "COMPLETED") return ev.status;
  if (!ev.error) return "OK";
  return ev.error_type === "cancelled" ? "CANCELLED" : "FAILED";
}

function appendLogs(lines) {
  const list = $("logs");
  for (const line of lines || []) {
    const time = line.timestamp ? new Date(line.timestamp).toLocaleTimeString([], { hour12: false }) : "";
    const item = document.createElement("li");
    item.className = `log-${(line.level || "INFO").toLowerCase()}`;
    const stamp = document.createElement("time");
    stamp.textContent = time;
    if (line.timestamp) stamp.dateTime = line.timestamp;
    item.append(stamp, ` ${line.message}`);
    list.append(item);
    const m = PROGRESS_LINE.exec(line.message);
    if (m) setProgress(Number(m[1]), Number(m[2]), m[3]);
  }
  list.scrollTop = list.scrollHeight;
}

function setProgress(done, total, fps) {
  const bar = $("run-progress");
  if (done === null) {
    bar.removeAttribute("value"); // indeterminate: waiting, or started without a count yet
    $("run-progress-text").textContent = "";
    return;
  }
  bar.max = total || 1;
  bar.value = done;
  $("run-progress-text").textContent = total > 1 ? `${done}/${total} frames${fps ? ` · ${fps} frames/s` : ""}` : "";
}

function onStatus(id, ev) {
  if (state.current !== id) return;
  $("run-status").textContent = statusLabel(ev);
  $("run-status").dataset.status = historyStatus(ev);
  $("run-queue").textContent =
    ev.status === "IN_QUEUE" ? (ev.queue_position ? `${ev.queue_position} ahead in the queue` : "next in the queue") : "";
  appendLogs(ev.logs);
  const bar = $("run-progress");
  if (ev.status === "COMPLETED" && !ev.error) {
    if (bar.hasAttribute("value") && bar.max > 1) bar.value = bar.max; // keep the frame count shown
    else setProgress(1, 1);
  } else if (ev.status === "COMPLETED" && !bar.hasAttribute("value")) {
    bar.value = 0;
  }
  updateEntry(id, { status: historyStatus(ev) });
}

/** Reads the SSE status stream with fetch (EventSource cannot send the Authorization header). */
async function readStream(id, signal) {
  const resp = await api(`${REQUESTS}/${id}/status/stream?logs=1`, { headers: { Accept: "text/event-stream" }, signal });
  if (!resp.ok) throw new HttpError(resp.status, await errorMessage(resp));
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  let first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      const data = block
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue; // a keep-alive comment
      const ev = JSON.parse(data);
      if (first) $("logs").replaceChildren(); // every connection starts with all the logs so far
      first = false;
      onStatus(id, ev);
      last = ev;
    }
  }
}

async function watch(id) {
  state.stream?.abort();
  const ctrl = new AbortController();
  state.stream = ctrl;
  let last = null;
  for (let attempt = 0; !ctrl.signal.aborted; attempt++) {
    try {
      last = (await readStream(id, ctrl.signal)) || last;
    } catch (e) {
      if (ctrl.signal.aborted) return;
      if (e instanceof HttpError) {
        if (e.status !== 401) notice(`Request ${id}: ${e.message}`);
        if (e.status === 404) updateEntry(id, { status: "GONE" });
        $("cancel").disabled = true;
        return;
      }
    }
    if (last?.status === "COMPLETED") break;
    await new Promise((r) => setTimeout(r, Math.min(5000, 500 * (attempt + 1)))); // the stream broke: reconnect
  }
  if (ctrl.signal.aborted || state.current !== id) return;
  $("cancel").disabled = true;
  if (!last.error) await showResult(id);
}

function open(entry) {
  state.current = entry.id;
  notice(null);
  $("run").hidden = false;
  $("result").hidden = true;
  compare.pause();
  $("run-id").textContent = entry.id;
  $("run-status").textContent = "Connecting…";
  $("run-queue").textContent = "";
  $("logs").replaceChildren();
  setProgress(null);
  $("cancel").disabled = false;
  $("run").scrollIntoView({ block: "start", behavior: "smooth" });
  watch(entry.id);
}

async function cancel() {
  const id = state.current;
  if (!id) return;
  const resp = await api(`${REQUESTS}/${id}/cancel`, { method: "PUT" }).catch(() => null);
  if (!resp) return;
  const body = await resp.json().catch(() => ({}));
  if (resp.status === 202) $("run-queue").textContent = "cancellation requested…";
  else if (body.status === "ALREADY_COMPLETED") $("run-queue").textContent = "already completed: nothing to cancel";
  else notice(`Cancel failed (${resp.status}): ${body.detail || ""}`);
}

// ---- the result ------------------------------------------------------------------------------

async function showResult(id) {
  const resp = await api(`${REQUESTS}/${id}`);
  if (!resp.ok) {
    notice(`Result of ${id}: ${await errorMessage(resp)}`);
    return;
  }
  const out = await resp.json();
  if (state.current !== id) return;
  const entry = history().find((e) => e.id === id) || {};
  const media = out.media || {};
  const inputSrc = state.localInputs.get(id) || entry.input_url;
  $("result").hidden = false;
  compare.load(inputSrc || "", out.video.url, media.output_fps);
  $("in-frames").textContent = media.input_frames ?? "–";
  $("out-frames").textContent = media.output_frames ?? "–";
  $("in-fps").textContent = fmtFps(media.input_fps);
  $("out-fps").textContent = fmtFps(media.output_fps);
  $("in-duration").textContent = fmtSeconds(media.duration_s);
  $("out-duration").textContent = fmtSeconds(media.output_duration_s);
  $("in-size").textContent = fmtBytes(entry.input_size);
  $("out-size").textContent = fmtBytes(out.video.file_size);
  const link = $("download");
  link.href = out.video.url;
  link.download = out.video.file_name || "";
  link.textContent = `Download ${out.video.file_name || "the result"} (${fmtBytes(out.video.file_size)})`;
}

// ---- history (localStorage) ---------------------------------------------------------------------

function history() {
  try {
    const list = JSON.parse(localStorage.getItem(HISTORY_STORE) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function saveHistory(list) {
  localStorage.setItem(HISTORY_STORE, JSON.stringify(list.slice(0, HISTORY_MAX)));
  renderHistory();
}

function saveEntry(entry) {
  saveHistory([entry, ...history().filter((e) => e.id !== entry.id)]);
}

function updateEntry(id, changes) {
  const list = history();
  const entry = list.find((e) => e.id === id);
  if (!entry || Object.entries(changes).every(([k, v]) => entry[k] === v)) return;
  Object.assign(entry, changes);
  saveHistory(list);
}

function renderHistory() {
  const list = history();
  const items = list.map((entry) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.dataset.id = entry.id;
    const when = new Date(entry.created).toLocaleString([], { hour12: false });
    button.textContent = `${entry.name || entry.id}`;
    button.setAttribute("aria-label", `Reopen ${entry.name || ""} request ${entry.id}, ${entry.status}`);
    button.addEventListener("click", () => open(entry));
    const status = document.createElement("span");
    status.className = `badge badge-${(entry.status || "").toLowerCase()}`;
    status.textContent = entry.status;
    const meta = document.createElement("span");
    meta.className = "hint";
    meta.textContent = `${when} · ${entry.id.slice(0, 8)}`;
    li.append(button, " ", status, " ", meta);
    return li;
  });
  if (!items.length) {
    const li = document.createElement("li");
    li.className = "hint";
    li.textContent = "Nothing yet.";
    items.push(li);
  }
  $("history").replaceChildren(...items);
}

/** Brings the status of unfinished entries up to date (one status read each). */
async function refreshHistory() {
  if (document.body.dataset.auth === "1" && !sessionStorage.getItem(KEY_STORE)) return; // no key yet: no 401 at load
  for (const entry of history()) {
    if (entry.status !== "IN_QUEUE" && entry.status !== "IN_PROGRESS") continue;
    const resp = await api(`${REQUESTS}/${entry.id}/status`).catch(() => null);
    if (!resp) return; // 401 or offline: leave the list as it is
    if (resp.status === 404) updateEntry(entry.id, { status: "GONE" });
    else if (resp.ok) updateEntry(entry.id, { status: historyStatus(await resp.json()) });
  }
}

// ---- start ------------------------------------------------------------------------------------

async function loadForm() {
  try {
    const resp = await fetch("/openapi.json", { cache: "no-store" });
    if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}`);
    const doc = await resp.json();
    state.form = buildForm($("params"), doc, requestSchema(doc), { skip: ["video_url"] });
    const url = requestSchema(doc).properties?.video_url;
    if (url?.description) $("video-url").title = url.description;
  } catch (e) {
    $("params").textContent = "";
    notice(`Could not load the request schema from /openapi.json: ${e.message}`);
  }
}

const compare = new Compare($("result"));

setupKey();
setupInput();
$("job-form").addEventListener("submit", onSubmit);
$("reset").addEventListener("click", () => state.form?.reset());
$("cancel").addEventListener("click", cancel);
$("history-clear").addEventListener("click", () => saveHistory([]));
renderHistory();
await loadForm();
document.body.dataset.ready = "1";
refreshHistory();
