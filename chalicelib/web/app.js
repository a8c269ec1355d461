// The web page's behaviour: upload, watch (long polls), categories and chart, retry, cancel, a
// drop's results as CSV, and the operations view. Plain JS,
// no build step.
"use strict";

(() => {
  const KEY_STORAGE = "imgcls.apiKey";
  const WAIT_S = 20; // the longest the API waits for a job to finish
  const WATCHERS = 2;
  const RETRY_MS = 1000;
  const UPLOADS_AT_ONCE = 3;
  const LIST_LIMIT = 20;
  const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELED", "REJECTED"]);
  const OPEN = new Set(["PENDING", "PROCESSING"]); // what Cancel can stop
  const CHIPS = 4; // categories shown above the chart, at most
  const CHIP_FLOOR = 0.05; // categories less probable than this are not shown
  const STATUS_TEXT = {
    UPLOADING: "Uploading",
    PENDING: "Pending",
    PROCESSING: "Processing",
    SUCCEEDED: "Succeeded",
    FAILED: "Failed",
    CANCELED: "Canceled",
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
    watching: 0,
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
      categories: null,
      cachedFrom: null,
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
    job.categories = data.categories || null;
    job.cachedFrom = data.cached_from || null;
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
      // 202: queued; 200: answered at once from an earlier job of the same image.
      applyServerJob(job, data);
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

  async function cancel(job, button) {
    const generation = state.generation;
    button.disabled = true;
    button.textContent = "Canceling…";
    try {
      const data = await api("POST", `jobs/${encodeURIComponent(job.jobId)}/cancel`);
      if (generation !== state.generation) return;
      applyServerJob(job, data);
      job.el.focus();
    } catch (err) {
      if (generation !== state.generation) return;
      // 409: it finished first; show how it ended.
      if (err.status === 409) await refresh(job);
      else announce(`${job.name}: cancel refused. ${err.message}`);
      renderJob(job);
    }
  }

  // ---------------------------------------------------------------- waiting (long polls)
  // Nothing polls on a timer: a watcher asks the server to answer when a job is finished
  // (GET jobs/{id}?wait=20), takes the next unfinished job when it has its answer, and comes
  // back to a job still running after the 20 s. Two watchers at most: a browser opens six
  // connections to a host, and the uploads need theirs.

  function schedulePoll() {
    while (state.watching < WATCHERS) {
      const job = activeJobs().find((j) => !j.watched);
      if (!job) return;
      job.watched = true;
      state.watching += 1;
      watch(job).finally(() => {
        job.watched = false;
        state.watching -= 1;
        schedulePoll();
      });
    }
  }

  function activeJobs() {
    return [...state.jobs.values()].filter((j) => j.jobId && !TERMINAL.has(j.status));
  }

  async function refresh(job, { wait = 0 } = {}) {
    const generation = state.generation;
    const query = wait ? `?wait=${wait}` : "";
    try {
      const data = await api("GET", `jobs/${encodeURIComponent(job.jobId)}${query}`);
      if (generation === state.generation) applyServerJob(job, data);
    } catch (err) {
      // A 404 means the job is gone; anything else is worth another try in a moment.
      if (err.status === 404 && generation === state.generation) {
        job.error = { code: err.code, message: err.message };
        setStatus(job, "REJECTED");
      } else {
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  async function watch(job) {
    if (!state.key) return;
    await refresh(job, { wait: WAIT_S });
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
    const batch = {
      id: `batch-${state.batchIds}`,
      jobs: [],
      el: null,
      announced: false,
      csvUrl: null,
    };
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
    const download = document.createElement("a");
    download.className = "batch-download";
    download.textContent = "Download results (CSV)";
    download.download = `${batch.id}-results.csv`;
    download.hidden = true;
    li.append(title, bar, text, download);
    ui.batches.prepend(li);
    batch.el = { root: li, title, bar, text, download };
    return batch;
  }

  /**
   * Progress of one drop of files, in the shape GET /batches/{id} will answer
   * ({total, done, succeeded, failed}). It is counted here over the drop's jobs until the
   * batch API exists; this is the one function to switch over then.
   */
  async function batchProgress(batch) {
    const counts = { total: batch.jobs.length, done: 0, succeeded: 0, failed: 0, canceled: 0 };
    for (const job of batch.jobs) {
      if (job.status === "SUCCEEDED") counts.succeeded += 1;
      if (job.status === "FAILED" || job.status === "REJECTED") counts.failed += 1;
      if (job.status === "CANCELED") counts.canceled += 1;
    }
    counts.done = counts.succeeded + counts.failed + counts.canceled;
    return counts;
  }

  async function renderBatch(batch) {
    const p = await batchProgress(batch);
    const { title, bar, text } = batch.el;
    title.textContent = `Batch of ${p.total} images`;
    bar.max = p.total;
    bar.value = p.done;
    text.textContent =
      `${p.done} of ${p.total} done` +
      (p.failed ? `, ${p.failed} failed` : "") +
      (p.canceled ? `, ${p.canceled} canceled` : "");
    batch.el.root.dataset.complete = String(p.done === p.total);
    if (p.done === p.total) offerResults(batch);
    if (p.done === p.total && !batch.announced) {
      batch.announced = true;
      announce(`Batch finished: ${text.textContent}`);
    }
  }

  /**
   * A finished drop's results as a CSV file, one row per file, in the columns of the API's
   * exports (GET batches/{id}/results?format=csv). Built here from what the page holds: a
   * link cannot carry the x-api-key header, and a drop is one POST jobs per file.
   */
  function offerResults(batch) {
    const columns = ["job_id", "filename", "status", "label", "probability", "categories", "error"];
    const rows = batch.jobs.map((job) => {
      const top = (job.predictions || [])[0] || {};
      const categories = (job.categories || []).map((c) => `${c.name} ${c.probability}`);
      const error = job.error ? `${job.error.code}: ${job.error.message}` : "";
      return [job.jobId, job.name, job.status, top.label, top.probability, categories.join("; "), error];
    });
    const text = [columns, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n") + "\r\n";
    if (batch.csvUrl) URL.revokeObjectURL(batch.csvUrl);
    batch.csvUrl = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    batch.el.download.href = batch.csvUrl;
    batch.el.download.hidden = false;
  }

  /** RFC 4180 quoting; a cell a spreadsheet would run as a formula is prefixed with '. */
  function csvCell(value) {
    let text = value === undefined || value === null ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
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
      job.status, job.attempts, job.predictions, job.categories, job.error, job.thumb,
      job.createdAt, job.history.length, job.httpStatus,
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
    if (job.cachedFrom) meta.append(el("span", "cached", "from an earlier identical image"));
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
      return [chips(job), chart(job)].filter(Boolean);
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
    if (job.status === "CANCELED") return [el("p", "waiting", "Canceled: it will not be classified.")];
    if (job.error) return [errorText(job)]; // e.g. a refused retry
    const parts = [el("p", "waiting", waitingText(job.status))];
    if (job.jobId && OPEN.has(job.status)) {
      const button = el("button", "button secondary", "Cancel");
      button.type = "button";
      button.setAttribute("aria-label", `Cancel ${job.name}`);
      button.addEventListener("click", () => cancel(job, button));
      parts.push(button);
    }
    return parts;
  }

  /** The job's most probable categories (cat, beverage…) as chips above the chart. */
  function chips(job) {
    const shown = (job.categories || []).filter((c) => c.probability >= CHIP_FLOOR).slice(0, CHIPS);
    if (!shown.length) return null;
    const list = el("ul", "chips");
    list.setAttribute("aria-label", `Categories of ${job.name}`);
    for (const c of shown) {
      const chip = el("li", "chip", `${c.name} ${percent(c.probability)}`);
      chip.dataset.category = c.name;
      list.append(chip);
    }
    return list;
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

  // ---------------------------------------------------------------- operations view

  // The local runtime serves Prometheus text at GET /metrics; read every 2 s, it is drawn as a
  // few small charts. A deployment has no such route (API Gateway answers 403 for it, a server
  // without it 404): the panel then stays hidden and the page never asks again.
  const OPS_MS = 2000;
  const OPS_READINGS = 90; // three minutes of readings on every line chart
  const MINUTE_MS = 60000;
  const CHART_W = 300;
  const CHART_H = 96;
  const opsUi = {
    root: $("ops"),
    status: $("ops-status"),
    backlog: $("ops-backlog"),
    jobs: $("ops-jobs"),
    latency: $("ops-latency"),
    dead: $("ops-dead"),
    webhooks: $("ops-webhooks"),
  };
  const ops = { readings: [] };

  /** Prometheus' text format → [{name, labels, value}] (comments and blank lines skipped). */
  function parseMetrics(text) {
    const samples = [];
    for (const line of text.split("\n")) {
      const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line.trim());
      if (!m) continue;
      const labels = {};
      for (const [, k, v] of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return samples;
  }

  /** One reading: the counters summed over their labels, the latency quantiles, the queues. */
  function opsReading(samples, at) {
    const total = (name) =>
      samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
    const quantile = (q) => {
      const s = samples.find(
        (x) => x.name === "imgcls_classification_latency_ms" && x.labels.quantile === q,
      );
      return s ? s.value : NaN;
    };
    const queues = new Map();
    const queue = (name) => {
      if (!queues.has(name)) {
        queues.set(name, { name, visible: 0, in_flight: 0, delayed: 0, maxAge: NaN });
      }
      return queues.get(name);
    };
    for (const s of samples) {
      if (s.name === "imgcls_queue_messages") queue(s.labels.queue)[s.labels.state] = s.value;
      if (s.name === "imgcls_queue_oldest_message_max_age_seconds") {
        queue(s.labels.queue).maxAge = s.value;
      }
    }
    return {
      at,
      succeeded: total("imgcls_jobs_succeeded_total"),
      failed: total("imgcls_jobs_failed_total"),
      deadLetters: total("imgcls_dead_letters_total"),
      delivered: total("imgcls_webhooks_delivered_total"),
      webhooksFailed: total("imgcls_webhooks_failed_total"),
      p50: quantile("0.5"),
      p95: quantile("0.95"),
      queues: [...queues.values()],
    };
  }

  const COUNTERS = ["succeeded", "failed", "deadLetters", "delivered", "webhooksFailed"];

  function addReading(reading) {
    const last = ops.readings[ops.readings.length - 1];
    // Counters only grow: a smaller one means the runtime restarted, and its history is gone.
    if (last && COUNTERS.some((key) => reading[key] < last[key])) ops.readings = [];
    ops.readings.push(reading);
    if (ops.readings.length > OPS_READINGS) ops.readings.shift();
  }

  /** How much a counter grew in the minute before reading ``i`` (since the first, if sooner). */
  function perMinute(key, i = ops.readings.length - 1) {
    const now = ops.readings[i];
    let base = now;
    for (let j = i; j >= 0 && now.at - ops.readings[j].at <= MINUTE_MS; j -= 1) {
      base = ops.readings[j];
    }
    return now[key] - base[key];
  }

  function perMinuteSeries(key) {
    return ops.readings.map((_, i) => perMinute(key, i));
  }

  /** GET metrics: "ok" with the samples, "absent" (no such route here) or "down". */
  async function readMetrics() {
    let resp;
    try {
      resp = await fetch(new URL("metrics", document.baseURI), { cache: "no-store" });
      const type = resp.headers.get("content-type") || "";
      if (resp.ok && type.startsWith("text/plain")) {
        return { state: "ok", samples: parseMetrics(await resp.text()) };
      }
    } catch (_) {
      return { state: "down", samples: [] };
    }
    return { state: resp.status >= 500 ? "down" : "absent", samples: [] };
  }

  async function opsTick() {
    if (!document.hidden) {
      const { state, samples } = await readMetrics();
      if (state === "absent") {
        opsUi.root.hidden = true; // a deployment: never ask again
        return;
      }
      if (state === "ok") {
        addReading(opsReading(samples, Date.now()));
        opsUi.root.hidden = false;
        renderOps();
      } else {
        opsUi.root.dataset.state = "stale";
        opsUi.status.textContent = "Not answering; trying again every 2 s.";
      }
    }
    setTimeout(opsTick, OPS_MS);
  }

  function renderOps() {
    const now = ops.readings[ops.readings.length - 1];
    opsUi.root.dataset.state = "live";
    opsUi.root.dataset.readings = String(ops.readings.length);
    opsUi.status.textContent = `Updated ${new Date(now.at).toLocaleTimeString()}`;
    renderBacklog(now);
    renderJobsPerMinute(now);
    renderLatency(now);
    renderDeadLetters(now);
    renderWebhooks(now);
  }

  function shortQueue(name) {
    return name.replace(/^imgcls-/, "");
  }

  function formatMs(ms) {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
  }

  /** "3 waiting, 10 in flight; oldest ≤ 4 s": the age is an upper bound (see ops_metrics.py). */
  function describeQueue(q) {
    if (q.visible + q.in_flight + q.delayed === 0) return "empty";
    const delayed = q.delayed ? `, ${q.delayed} delayed` : "";
    const age = Number.isFinite(q.maxAge) ? `oldest ≤ ${Math.round(q.maxAge)} s` : "oldest n/a";
    return `${q.visible} waiting, ${q.in_flight} in flight${delayed}; ${age}`;
  }

  function renderBacklog(now) {
    const queues = now.queues.filter((q) => !q.name.endsWith("-dlq"));
    const rows = queues.map((q) => ({
      label: shortQueue(q.name),
      parts: [
        { value: q.visible, cls: "ops-visible" },
        { value: q.in_flight, cls: "ops-inflight" },
        { value: q.delayed, cls: "ops-delayed" },
      ],
    }));
    barChart(opsUi.backlog, rows, [
      { name: "waiting", cls: "ops-visible" },
      { name: "in flight", cls: "ops-inflight" },
      { name: "delayed", cls: "ops-delayed" },
    ]);
    numbers(
      opsUi.backlog,
      queues.map((q) => ({ key: q.name, term: q.name, value: describeQueue(q) })),
    );
  }

  function renderJobsPerMinute(now) {
    lineChart(opsUi.jobs, "/min", [
      { name: "succeeded", cls: "ops-ok", values: perMinuteSeries("succeeded") },
      { name: "failed", cls: "ops-fail", values: perMinuteSeries("failed") },
    ]);
    numbers(opsUi.jobs, [
      counterNumber("succeeded", "Succeeded", now),
      counterNumber("failed", "Failed", now),
    ]);
  }

  function counterNumber(key, term, now) {
    return { key, term, value: `${now[key]} in all, ${perMinute(key)} in the last minute` };
  }

  function renderLatency(now) {
    lineChart(opsUi.latency, "ms", [
      { name: "p50", cls: "ops-p50", values: ops.readings.map((r) => r.p50) },
      { name: "p95", cls: "ops-p95", values: ops.readings.map((r) => r.p95) },
    ]);
    const shown = (ms) =>
      Number.isFinite(ms) ? formatMs(ms) : "n/a: nothing classified in the last minute";
    numbers(opsUi.latency, [
      { key: "p50", term: "p50", value: shown(now.p50) },
      { key: "p95", term: "p95", value: shown(now.p95) },
    ]);
  }

  function renderDeadLetters(now) {
    const dlqs = now.queues.filter((q) => q.name.endsWith("-dlq"));
    const rows = [
      { label: "dead-lettered", parts: [{ value: now.deadLetters, cls: "ops-fail" }] },
      ...dlqs.map((q) => ({
        label: shortQueue(q.name),
        parts: [
          { value: q.visible, cls: "ops-visible" },
          { value: q.in_flight, cls: "ops-inflight" },
        ],
      })),
    ];
    barChart(opsUi.dead, rows, [
      { name: "dead-lettered", cls: "ops-fail" },
      { name: "waiting", cls: "ops-visible" },
      { name: "in flight", cls: "ops-inflight" },
    ]);
    numbers(opsUi.dead, [
      {
        key: "deadLetters",
        term: "Jobs dead-lettered",
        value: `${now.deadLetters} in all, ${perMinute("deadLetters")} in the last minute`,
      },
      ...dlqs.map((q) => ({ key: q.name, term: q.name, value: describeQueue(q) })),
    ]);
  }

  function renderWebhooks(now) {
    lineChart(opsUi.webhooks, "/min", [
      { name: "delivered", cls: "ops-ok", values: perMinuteSeries("delivered") },
      { name: "failed", cls: "ops-fail", values: perMinuteSeries("webhooksFailed") },
    ]);
    numbers(opsUi.webhooks, [
      counterNumber("delivered", "Delivered", now),
      counterNumber("webhooksFailed", "Failed attempts", now),
    ]);
  }

  /** The figure's numbers as text, and the same as its chart's accessible name. */
  function numbers(figure, items) {
    const list = figure.querySelector(".ops-numbers");
    const nodes = [];
    for (const item of items) {
      const dd = el("dd", null, item.value);
      dd.dataset.key = item.key;
      nodes.push(el("dt", null, item.term), dd);
    }
    list.replaceChildren(...nodes);
    const caption = figure.querySelector("figcaption").textContent;
    const summary = items.map((item) => `${item.term}: ${item.value}`).join("; ");
    figure.querySelector("svg").setAttribute("aria-label", `${caption}. ${summary}`);
  }

  /** 1, 2 or 5 times a power of ten: the top of a chart's scale. */
  function niceMax(value) {
    const power = 10 ** Math.floor(Math.log10(Math.max(1, value)));
    return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= value);
  }

  function svgNode(tag, attributes) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    return node;
  }

  /** Lines over the last readings, newest on the right; gaps where a value is unknown. */
  function lineChart(figure, unit, series) {
    const svg = figure.querySelector("svg");
    const top = 16;
    const bottom = CHART_H - 3;
    const known = series.flatMap((s) => s.values.filter(Number.isFinite));
    const max = niceMax(Math.max(1, ...known));
    const x = (i, n) => CHART_W - (n - 1 - i) * (CHART_W / (OPS_READINGS - 1));
    const y = (v) => bottom - (v / max) * (bottom - top);
    svg.setAttribute("viewBox", `0 0 ${CHART_W} ${CHART_H}`);
    const nodes = [
      svgNode("line", { x1: 0, x2: CHART_W, y1: top, y2: top, class: "ops-grid-line" }),
      svgNode("line", { x1: 0, x2: CHART_W, y1: bottom, y2: bottom, class: "ops-axis" }),
      svgText(`${max} ${unit}`, { x: 0, y: 11, cls: "ops-scale" }),
    ];
    for (const s of series) {
      let d = "";
      let last = null;
      s.values.forEach((v, i) => {
        if (!Number.isFinite(v)) {
          last = null;
          return;
        }
        const point = `${x(i, s.values.length).toFixed(1)} ${y(v).toFixed(1)}`;
        d += `${last === null ? "M" : "L"}${point} `;
        last = [x(i, s.values.length), y(v)];
      });
      const path = svgNode("path", { d: d.trim(), class: `ops-line ${s.cls}` });
      path.dataset.series = s.name;
      path.dataset.values = s.values
        .map((v) => (Number.isFinite(v) ? String(Math.round(v * 10) / 10) : ""))
        .join(",");
      nodes.push(path);
      if (last) nodes.push(svgNode("circle", { cx: last[0], cy: last[1], r: 2.5, class: s.cls }));
    }
    nodes.push(legend(series, 11));
    svg.replaceChildren(...nodes);
  }

  /** The series' names in their colours, right-aligned on one line. */
  function legend(series, y) {
    const line = svgText("", { x: CHART_W, y, cls: "ops-legend" });
    line.setAttribute("text-anchor", "end");
    for (const s of series) {
      const key = svgNode("tspan", { class: `ops-key ${s.cls}`, dx: 8 });
      key.textContent = `● ${s.name}`;
      line.append(key);
    }
    return line;
  }

  /** Horizontal bars, each made of stacked parts, with its total at the end. */
  function barChart(figure, rows, parts) {
    const svg = figure.querySelector("svg");
    const row = 22;
    const head = 18; // the legend's line
    const labelW = 92;
    const valueW = 44;
    const span = CHART_W - labelW - valueW;
    const totals = rows.map((r) => r.parts.reduce((sum, p) => sum + p.value, 0));
    const max = niceMax(Math.max(1, ...totals));
    svg.setAttribute("viewBox", `0 0 ${CHART_W} ${head + row * rows.length}`);
    const nodes = [legend(parts, 11)];
    rows.forEach((r, i) => {
      const g = svgNode("g", { transform: `translate(0 ${head + i * row})`, class: "ops-bar-row" });
      g.dataset.total = String(totals[i]);
      g.append(svgText(r.label, { x: 0, y: 15, cls: "ops-bar-label" }));
      g.append(svgNode("rect", { x: labelW, y: 5, width: span, height: 12, class: "ops-track" }));
      let at = labelW;
      for (const part of r.parts) {
        const width = (span * part.value) / max;
        if (width > 0) {
          const cls = `ops-bar ${part.cls}`;
          g.append(svgNode("rect", { x: at, y: 5, width, height: 12, class: cls }));
        }
        at += width;
      }
      const value = svgText(String(totals[i]), { x: CHART_W, y: 15, cls: "ops-bar-value" });
      value.setAttribute("text-anchor", "end");
      g.append(value);
      nodes.push(g);
    });
    svg.replaceChildren(...nodes);
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
  opsTick();
})();
