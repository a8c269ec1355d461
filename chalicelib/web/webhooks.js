// The web page's webhook panel: the caller's subscriptions, each one's delivery log (attempts,
// statuses, durations), redelivery, and enabling a disabled subscription. Plain JS, no build
// step; the key is the one app.js takes into use from the same field.
"use strict";

(() => {
  const PAGE = 10;
  const REASONS = {
    endpoint_gone: "the endpoint answered 410 Gone",
    consecutive_failures: "too many events in a row failed",
    disabled_by_owner: "disabled by you",
  };
  const $ = (id) => document.getElementById(id);
  const ui = {
    key: $("api-key"),
    keyForm: $("key-form"),
    list: $("webhooks"),
    empty: $("webhooks-empty"),
    refresh: $("webhooks-refresh"),
  };

  async function call(method, path, body) {
    const headers = { "x-api-key": ui.key.value.trim() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(new URL(path, document.baseURI), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await resp.json().catch(() => null);
    if (!resp.ok) {
      const message = (data && data.error && data.error.message) || `HTTP ${resp.status}`;
      throw new Error(message);
    }
    return data;
  }

  function el(tag, { text, cls, attrs } = {}, ...children) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function button(label, onClick, attrs = {}) {
    const node = el("button", { text: label, cls: "button secondary", attrs: { type: "button", ...attrs } });
    node.addEventListener("click", onClick);
    return node;
  }

  function when(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function attemptText(attempt) {
    const outcome = attempt.status !== null ? `HTTP ${attempt.status}` : attempt.error || "no answer";
    const why = attempt.status !== null && attempt.error ? ` (${attempt.error})` : "";
    return `${when(attempt.at)}: ${outcome}${why}, ${Math.round(attempt.duration_ms)} ms`;
  }

  function deliveryItem(hook, delivery, reload) {
    const attempts = el("ol", { cls: "webhook-attempts", attrs: { "aria-label": "Attempts" } });
    for (const attempt of delivery.attempts) attempts.append(el("li", { text: attemptText(attempt) }));
    const item = el(
      "li",
      { cls: "webhook-delivery", attrs: { "aria-label": `Delivery ${delivery.id}` } },
      el("p", {
        cls: "webhook-delivery-head",
        text: `${delivery.event_type} · ${delivery.state} · event of ${when(delivery.event_created_at)}`,
      }),
      attempts,
    );
    if (hook.enabled && !["pending", "retrying"].includes(delivery.state)) {
      item.append(
        button("Redeliver", async (event) => {
          event.target.disabled = true;
          try {
            await call("POST", `webhooks/${hook.id}/deliveries/${delivery.id}/redeliver`);
            reload();
          } catch (err) {
            item.append(el("p", { cls: "notice", text: err.message, attrs: { role: "alert" } }));
          }
        }),
      );
    }
    return item;
  }

  async function showLog(hook, box, token = null) {
    if (!token) box.replaceChildren(el("p", { cls: "hint", text: "Loading deliveries…" }));
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (token) query.set("next_token", token);
    let page;
    try {
      page = await call("GET", `webhooks/${hook.id}/deliveries?${query}`);
    } catch (err) {
      box.replaceChildren(el("p", { cls: "notice", text: err.message, attrs: { role: "alert" } }));
      return;
    }
    const reload = () => showLog(hook, box);
    let list = box.querySelector("ul.webhook-log");
    if (!token) {
      list = el("ul", { cls: "webhook-log", attrs: { "aria-label": `Deliveries to ${hook.url}` } });
      box.replaceChildren(list);
      if (!page.deliveries.length) box.append(el("p", { cls: "hint", text: "No deliveries yet." }));
    }
    for (const delivery of page.deliveries) list.append(deliveryItem(hook, delivery, reload));
    box.querySelector(".webhook-more")?.remove();
    if (page.next_token) {
      const more = button("Earlier deliveries", () => showLog(hook, box, page.next_token));
      more.classList.add("webhook-more");
      box.append(more);
    }
  }

  function hookItem(hook) {
    const status = hook.enabled
      ? "Enabled"
      : `Disabled: ${REASONS[hook.disabled_reason] || hook.disabled_reason || "disabled"}`;
    const log = el("div", { cls: "webhook-log-box" });
    const item = el(
      "li",
      { cls: "webhook", attrs: { "aria-label": hook.url } },
      el("p", { cls: "webhook-url", text: hook.url }),
      el("p", { cls: "hint webhook-status", text: `${status} · ${hook.events.join(", ")}` }),
    );
    const actions = el("div", { cls: "webhook-actions" });
    const shown = button("Show deliveries", () => {
      shown.setAttribute("aria-expanded", "true");
      showLog(hook, log);
    }, { "aria-expanded": "false" });
    actions.append(shown);
    if (!hook.enabled) {
      actions.append(
        button("Enable", async () => {
          await call("PATCH", `webhooks/${hook.id}`, { enabled: true });
          load();
        }),
      );
    }
    item.append(actions, log);
    return item;
  }

  let loadedKey = null;
  let loads = 0; // a later load wins: an earlier answer arriving late is dropped

  /** Load the list again only when the key changed (Enter fires both submit and change). */
  function keyChanged() {
    if (ui.key.value.trim() !== loadedKey) load();
  }

  async function load() {
    loadedKey = ui.key.value.trim();
    loads += 1;
    const mine = loads;
    if (!loadedKey) {
      ui.list.replaceChildren();
      ui.empty.textContent = "Enter your API key to see your webhook subscriptions.";
      ui.empty.hidden = false;
      return;
    }
    let listed;
    try {
      listed = await call("GET", "webhooks");
    } catch (err) {
      if (mine !== loads) return;
      ui.list.replaceChildren();
      ui.empty.textContent = err.message;
      ui.empty.hidden = false;
      return;
    }
    if (mine !== loads) return;
    ui.list.replaceChildren(...listed.webhooks.map(hookItem));
    ui.empty.textContent = "No subscriptions: POST /webhooks makes one.";
    ui.empty.hidden = listed.webhooks.length > 0;
  }

  ui.key.addEventListener("change", keyChanged);
  ui.keyForm.addEventListener("submit", keyChanged);
  ui.refresh.addEventListener("click", load);
  load();
})();
