// The web page's behaviour: upload, watch (poll), chart, retry. Plain JS, no build step.
"use strict";

(() => {
  const KEY_STORAGE = "imgcls.apiKey";
  const POLL_MS = 1000;
  const UPLOADS_AT_ONCE = 3;
  const LIST_LIMIT = 20;
  const TERMINAL = new Set(["SUCCEEDED", "FAILED", "REJECTED"]);
  const STATUS_TEXT = {
    UPLOADING: "Uploading",
    PENDING: "Pending",
    PROCESSING: "Processing",
    SUCCEEDED: "Succeeded",
    FAILED: "Failed",
    REJECTED: "Rejected",
  };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const ui = {
    keyForm: $("key-form"),
    key: $("api-key"),
    showKey: $("show-key"),
    fileInput: $("file-input"),
    dropZone: $("drop-zone"),
    notice: $("notice"),
    batches: $("batches"),
    jobs: $("jobs"),
    empty: $("jobs-empty"),
    refresh: $("refresh"),
    more: $("more"),
    announcer: $("announcer"),
  };

  const state = {
    key: "",
    generation: 0, // bumped when the key changes: late answers for the old key are dropped
    jobs: new Map(), // local id → job
    timer: null,
    nextToken: null,
    localIds: 0,
    batchIds: 0,
    uploadQueue: [],
    uploading: 0,
  };

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** One call to the API; resolves to the JSON body or rejects with an ApiError. */
  async function api(method, path, { body, contentType } = {}) {
    const headers = { "x-api-key": state.key };
    if (contentType) headers["Content-Type"] = contentType;
    let resp;
    try {
      resp = await fetch(new URL(path, document.baseURI), { method, headers, body });
    } catch (_) {
      throw new ApiError(0, "network_error", "The service cannot be reached. Is it running?");
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = null;
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      const message = err.message || (data && data.message) || `HTTP ${resp.status}`;
      throw new ApiError(resp.status, err.code || `http_${resp.status}`, message);
    }
    return data;
  }

  // ---------------------------------------------------------------- jobs

  function newJob({ name, file = null, batch = null }) {
    state.localIds += 1;
    const job = {
      id: `job-${state.localIds}`,
      jobId: null,
      name,
      file,
      batch,
      status: null,
      attempts: 0,
      predictions: null,
      error: null,
      httpStatus: null,
      createdAt: null,
      history: [],
      thumb: file ? URL.createObjectURL(file) : null,
      el: null,
      signature: null,
    };
    state.jobs.set(job.id, job);
    return job;
  }

  function jobByServerId(jobId) {
    for (const job of state.jobs.values()) if (job.jobId === jobId) return job;
    return null;
  }

  /** Record a status change: history, live announcement, card and batch. */
  function setStatus(job, status, { quiet = false } = {}) {
    const changed = job.status !== status;
    job.status = status;
    if (changed) {
      job.history.push(STATUS_TEXT[status] || status);
      if (!quiet) announce(describe(job));
    }
    renderJob(job);
    if (job.batch) renderBatch(job.batch);
  }

  function describe(job) {
    const status = STATUS_TEXT[job.status] || job.status;
    if (job.status === "SUCCEEDED" && job.predictions && job.predictions.length) {
      const top = job.predictions[0];
      return `${job.name}: ${status}, ${shortLabel(top.label)} ${percent(top.probability)}`;
    }
    if ((job.status === "FAILED" || job.status === "REJECTED") && job.error) {
      return `${job.name}: ${status}. ${job.error.message}`;
    }
    return `${job.name}: ${status}`;
  }

  /** Take what the API says about a job into the page. */
  function applyServerJob(job, data, options = {}) {
    job.jobId = data.job_id;
    job.attempts = data.attempts || 0;
    job.predictions = data.predictions || null;
    job.error = data.error || null;
    job.createdAt = data.created_at || job.createdAt;
    if (data.image_url && !job.thumb) job.thumb = data.image_url;
    setStatus(job, data.status, options);
  }

  async function upload(job) {
    const generation = state.generation;
    setStatus(job, "UPLOADING", { quiet: true });
    const type = job.file.type.startsWith("image/") ? job.file.type : "application/octet-stream";
    try {
      const data = await api("POST", "jobs", { body: job.file, contentType: type });
      if (generation !== state.generation) return;
      job.jobId = data.job_id;
      setStatus(job, data.status);
      schedulePoll();
    } catch (err) {
      if (generation !== state.generation) return;
      job.error = { code: err.code, message: err.message };
      job.httpStatus = err.status;
      setStatus(job, "REJECTED");
    }
  }

  function pumpUploads() {
    while (state.uploading < UPLOADS_AT_ONCE && state.uploadQueue.length) {
      const job = state.uploadQueue.shift();
      state.uploading += 1;
      upload(job).finally(() => {
        state.uploading -= 1;
        pumpUploads();
      });
    }
  }

  function submitFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    commitKey();
    if (!state.key) {
      showNotice("Enter your API key first.");
      ui.key.focus();
      return;
    }
    hideNotice();
    const batch = files.length > 1 ? newBatch() : null;
    const jobs = files.map((file) => newJob({ name: file.name || "image", file, batch }));
    // Newest first on the page, but a drop keeps its own order.
    for (const job of [...jobs].reverse()) prependCard(job);
    for (const job of jobs) {
      if (batch) batch.jobs.push(job);
      setStatus(job, "UPLOADING", { quiet: true });
      state.uploadQueue.push(job);
    }
    if (batch) renderBatch(batch);
    announce(files.length > 1 ? `Uploading ${files.length} images` : `Uploading ${files[0].name}`);
    pumpUploads();
  }

  async function retry(job, button) {
    const generation = state.generation;
    button.disabled = true;
    button.textContent = "Retrying…";
    try {
      const data = await api("POST", `jobs/${encodeURIComponent(job.jobId)}/retry`);
      if (generation !== state.generation) return;
      job.error = null;
      job.predictions = null;
      setStatus(job, data.status);
      job.el.focus();
      schedulePoll();
    } catch (err) {
      if (generation !== state.generation) return;
      job.error = { code: err.code, message: err.message };
      renderJob(job);
      announce(`${job.name}: retry refused. ${err.message}`);
    }
  }

  // ---------------------------------------------------------------- polling

  function schedulePoll(delay = POLL_MS) {
    if (state.timer === null) state.timer = setTimeout(pollOnce, delay);
  }

  function activeJobs() {
    return [...state.jobs.values()].filter((j) => j.jobId && !TERMINAL.has(j.status));
  }

  async function refresh(job) {
    const generation = state.generation;
    try {
      const data = await api("GET", `jobs/${encodeURIComponent(job.jobId)}`);
      if (generation === state.generation) applyServerJob(job, data);
    } catch (err) {
      // A 404 means the job is gone; anything else is worth another try on the next tick.
      if (err.status === 404 && generation === state.generation) {
        job.error = { code: err.code, message: err.message };
        setStatus(job, "REJECTED");
      }
    }
  }

  async function pollOnce() {
    state.timer = null;
    if (!state.key) return;
    await Promise.all(activeJobs().map(refresh));
    if (activeJobs().length) schedulePoll();
  }

  // ---------------------------------------------------------------- earlier jobs

  async function loadEarlier({ append = false } = {}) {
    if (!state.key) return;
    const generation = state.generation;
    const params = new URLSearchParams({ limit: String(LIST_LIMIT) });
    if (append && state.nextToken) params.set("next_token", state.nextToken);
    let data;
    try {
      data = await api("GET", `jobs?${params}`);
    } catch (err) {
      if (generation === state.generation) showNotice(err.message);
      return;
    }
    if (generation !== state.generation) return;
    hideNotice();
    const added = [];
    for (const item of data.jobs || []) {
      const known = jobByServerId(item.job_id);
      if (known) {
        applyServerJob(known, item, { quiet: true });
        continue;
      }
      const job = newJob({ name: `Job ${item.job_id.slice(0, 8)}` });
      job.createdAt = item.created_at;
      placeCard(job);
      applyServerJob(job, item, { quiet: true });
      added.push(job);
    }
    state.nextToken = data.next_token || null;
    ui.more.hidden = !state.nextToken;
    updateEmpty();
    schedulePoll();
    // The list carries no image URL: fetch each job once for its thumbnail.
    for (const job of added) {
      if (generation !== state.generation) return;
      await refresh(job);
    }
  }

  // ---------------------------------------------------------------- batches

  function newBatch() {
    state.batchIds += 1;
    const batch = { id: `batch-${state.batchIds}`, jobs: [], el: null, announced: false };
    const li = document.createElement("li");
    li.className = "batch";
    li.id = batch.id;
    const title = document.createElement("p");
    title.className = "batch-title";
    title.id = `${batch.id}-title`;
    const bar = document.createElement("progress");
    bar.setAttribute("aria-labelledby", title.id);
    const text = document.createElement("p");
    text.className = "batch-text";
    li.append(title, bar, text);
    ui.batches.prepend(li);
    batch.el = { root: li, title, bar, text };
    return batch;
  }

  /**
   * Progress of one drop of files, in the shape GET /batches/{id} will answer
   * ({total, done, succeeded, failed}). It is counted here over the drop's jobs until the
   * batch API exists; this is the one function to switch over then.
   */
  async function batchProgress(batch) {
    const counts = { total: batch.jobs.length, done: 0, succeeded: 0, failed: 0 };
    for (const job of batch.jobs) {
      if (job.status === "SUCCEEDED") counts.succeeded += 1;
      if (job.status === "FAILED" || job.status === "REJECTED") counts.failed += 1;
    }
    counts.done = counts.succeeded + counts.failed;
    return counts;
  }

  async function renderBatch(batch) {
    const p = await batchProgress(batch);
    const { title, bar, text } = batch.el;
    title.textContent = `Batch of ${p.total} images`;
    bar.max = p.total;
    bar.value = p.done;
    text.textContent = `${p.done} of ${p.total} done` + (p.failed ? `, ${p.failed} failed` : "");
    batch.el.root.dataset.complete = String(p.done === p.total);
    if (p.done === p.total && !batch.announced) {
      batch.announced = true;
      announce(`Batch finished: ${text.textContent}`);
    }
  }

  // ---------------------------------------------------------------- rendering

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function percent(p) {
    return `${(p * 100).toFixed(1)}%`;
  }

  /** "tabby, tabby cat" → "tabby": ImageNet labels list synonyms after the first comma. */
  function shortLabel(label) {
    const first = String(label).split(",")[0].trim();
    return first.length > 32 ? `${first.slice(0, 31)}…` : first;
  }

  function createCard(job) {
    const li = el("li", "job");
    li.id = job.id;
    li.tabIndex = -1;
    li.setAttribute("aria-labelledby", `${job.id}-name`);
    job.el = li;
    return li;
  }

  function prependCard(job) {
    ui.jobs.prepend(createCard(job));
    updateEmpty();
  }

  /** Newest first, as GET /jobs lists them; cards still uploading count as newest. */
  function placeCard(job) {
    const li = createCard(job);
    const mine = job.createdAt || "\uffff";
    for (const other of ui.jobs.children) {
      const shown = state.jobs.get(other.id);
      if (((shown && shown.createdAt) || "\uffff") < mine) {
        ui.jobs.insertBefore(li, other);
        return;
      }
    }
    ui.jobs.append(li);
  }

  function updateEmpty() {
    ui.empty.hidden = state.jobs.size > 0;
    if (!state.key) ui.empty.textContent = "Enter your API key to see your jobs.";
    else ui.empty.textContent = "No jobs yet: choose or drop some images.";
  }

  /** The image as sent; the card's data-thumb says none, loading, loaded or broken. */
  function thumbnail(job) {
    const box = el("div", "thumb");
    const li = job.el;
    if (job.thumb) {
      const img = el("img");
      img.alt = "";
      img.decoding = "async";
      li.dataset.thumb = "loading";
      img.addEventListener("load", () => {
        li.dataset.thumb = "loaded";
      });
      img.addEventListener("error", () => {
        img.remove();
        box.classList.add("thumb-missing");
        li.dataset.thumb = "broken";
      });
      img.src = job.thumb;
      box.append(img);
    } else {
      box.classList.add("thumb-missing");
      li.dataset.thumb = "none";
    }
    return box;
  }

  function renderJob(job) {
    const li = job.el;
    if (!li) return;
    // Polling answers the same thing most of the time: redraw only what changed.
    const signature = JSON.stringify([
      job.status, job.attempts, job.predictions, job.error, job.thumb, job.createdAt,
      job.history.length, job.httpStatus,
    ]);
    if (job.signature === signature) return;
    job.signature = signature;
    li.dataset.status = job.status || "";
    if (job.jobId) li.dataset.jobId = job.jobId;
    const head = el("div", "job-head");
    const title = el("div", "job-title");
    const name = el("h3", "job-name", job.name);
    name.id = `${job.id}-name`;
    name.title = job.name;
    const meta = el("p", "job-meta");
    const badge = el("span", `badge badge-${(job.status || "").toLowerCase()}`, statusText(job));
    meta.append(badge);
    if (job.attempts > 1) meta.append(el("span", "attempts", `attempt ${job.attempts}`));
    if (job.createdAt) meta.append(el("time", "created", formatTime(job.createdAt)));
    title.append(name, meta);
    head.append(thumbnail(job), title);
    const parts = [head, ...body(job)];
    if (job.history.length > 1) {
      const history = el("p", "history", job.history.join(" → "));
      history.setAttribute("aria-label", `History: ${job.history.join(", ")}`);
      parts.push(history);
    }
    li.replaceChildren(...parts);
  }

  function statusText(job) {
    if (job.status === "REJECTED" && job.httpStatus) return `Rejected (${job.httpStatus})`;
    if (job.status === "REJECTED" && job.httpStatus === 0) return "Not sent";
    return STATUS_TEXT[job.status] || job.status || "";
  }

  function body(job) {
    if (job.status === "SUCCEEDED" && job.predictions && job.predictions.length) {
      return [chart(job)];
    }
    if (job.status === "FAILED") {
      const parts = [errorText(job)];
      if (job.jobId) {
        const button = el("button", "button", "Retry");
        button.type = "button";
        button.setAttribute("aria-describedby", `${job.id}-error`);
        button.addEventListener("click", () => retry(job, button));
        parts.push(button);
      }
      return parts;
    }
    if (job.status === "REJECTED") return [errorText(job)];
    if (job.error) return [errorText(job)]; // e.g. a refused retry
    return [el("p", "waiting", waitingText(job.status))];
  }

  function errorText(job) {
    const p = el("p", "error");
    p.id = `${job.id}-error`;
    p.append(el("span", "error-message", job.error ? job.error.message : "Failed."));
    if (job.error && job.error.code) p.append(" ", el("code", "error-code", job.error.code));
    return p;
  }

  function waitingText(status) {
    if (status === "UPLOADING") return "Sending the image…";
    if (status === "PROCESSING") return "The model is looking at it…";
    return "Queued for classification…";
  }

  /** A horizontal bar chart of the top 5 labels, with its text alternative. */
  function chart(job) {
    const top = job.predictions.slice(0, 5);
    const width = 320;
    const row = 38;
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "chart");
    svg.setAttribute("viewBox", `0 0 ${width} ${row * top.length}`);
    svg.setAttribute("role", "img");
    const summary = top.map((p) => `${shortLabel(p.label)} ${percent(p.probability)}`).join(", ");
    svg.setAttribute("aria-label", `Top ${top.length} labels for ${job.name}: ${summary}`);
    const title = document.createElementNS(SVG_NS, "title");
    title.textContent = `Top ${top.length} labels: ${summary}`;
    svg.append(title);
    top.forEach((p, i) => {
      const g = document.createElementNS(SVG_NS, "g");
      g.setAttribute("transform", `translate(0 ${i * row})`);
      g.setAttribute("class", i === 0 ? "bar-row top" : "bar-row");
      const label = svgText(shortLabel(p.label), { x: 0, y: 15, cls: "bar-label" });
      const value = svgText(percent(p.probability), { x: width, y: 15, cls: "bar-value" });
      value.setAttribute("text-anchor", "end");
      const track = svgRect({ x: 0, y: 21, w: width, h: 10, cls: "bar-track" });
      const share = Math.max(0, Math.min(1, Number(p.probability) || 0));
      const bar = svgRect({ x: 0, y: 21, w: Math.max(2, width * share), h: 10, cls: "bar" });
      const full = document.createElementNS(SVG_NS, "title");
      full.textContent = `${p.label}: ${percent(p.probability)}`;
      g.append(full, track, bar, label, value);
      svg.append(g);
    });
    return svg;
  }

  function svgText(text, { x, y, cls }) {
    const node = document.createElementNS(SVG_NS, "text");
    node.setAttribute("x", String(x));
    node.setAttribute("y", String(y));
    node.setAttribute("class", cls);
    node.textContent = text;
    return node;
  }

  function svgRect({ x, y, w, h, cls }) {
    const node = document.createElementNS(SVG_NS, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: h, rx: h / 2 })) {
      node.setAttribute(k, String(v));
    }
    node.setAttribute("class", cls);
    return node;
  }

  function formatTime(iso) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return "";
    return when.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
  }

  // ---------------------------------------------------------------- notices

  function announce(text) {
    const line = el("p", null, text);
    ui.announcer.append(line);
    while (ui.announcer.childElementCount > 20) ui.announcer.firstElementChild.remove();
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
  }

  function hideNotice() {
    ui.notice.hidden = true;
    ui.notice.textContent = "";
  }

  // ---------------------------------------------------------------- key

  function readStoredKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }

  function storeKey(key) {
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      // Storage may be disabled; the key then lasts as long as the page.
    }
  }

  /** Take the typed key into use; a different key means a different list of jobs. */
  function commitKey() {
    const key = ui.key.value.trim();
    if (key === state.key) return;
    state.key = key;
    storeKey(key);
    reset();
    loadEarlier();
  }

  function reset() {
    state.generation += 1;
    clearTimeout(state.timer);
    state.timer = null;
    state.uploadQueue = [];
    for (const job of state.jobs.values()) {
      if (job.thumb && job.thumb.startsWith("blob:")) URL.revokeObjectURL(job.thumb);
    }
    state.jobs.clear();
    state.nextToken = null;
    ui.jobs.replaceChildren();
    ui.batches.replaceChildren();
    ui.more.hidden = true;
    hideNotice();
    updateEmpty();
  }

  // ---------------------------------------------------------------- wiring

  function wire() {
    ui.key.addEventListener("change", commitKey);
    ui.keyForm.addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in the field takes the key into use, nothing is sent
      commitKey();
    });
    ui.showKey.addEventListener("click", () => {
      const show = ui.key.type === "password";
      ui.key.type = show ? "text" : "password";
      ui.showKey.setAttribute("aria-pressed", String(show));
      ui.showKey.textContent = show ? "Hide" : "Show";
    });
    // Space opens a file input; Enter does not in every browser, yet the zone reads as a button.
    ui.fileInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        ui.fileInput.click();
      }
    });
    ui.fileInput.addEventListener("change", () => {
      submitFiles(ui.fileInput.files);
      ui.fileInput.value = ""; // choosing the same file again still fires change
    });
    for (const type of ["dragenter", "dragover"]) {
      ui.dropZone.addEventListener(type, (event) => {
        event.preventDefault();
        ui.dropZone.classList.add("dragging");
      });
    }
    ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("dragging"));
    ui.dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      ui.dropZone.classList.remove("dragging");
      submitFiles(event.dataTransfer && event.dataTransfer.files);
    });
    // A file dropped beside the zone must not make the browser navigate away to it.
    window.addEventListener("dragover", (event) => event.preventDefault());
    window.addEventListener("drop", (event) => event.preventDefault());
    ui.refresh.addEventListener("click", () => {
      commitKey();
      loadEarlier();
    });
    ui.more.addEventListener("click", () => loadEarlier({ append: true }));
  }

  wire();
  ui.key.value = readStoredKey();
  commitKey();
  updateEmpty();
})();
