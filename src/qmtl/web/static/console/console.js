/* QMTL plan review console: vanilla JS, no build step, no network beyond this gateway.
 *
 * Flow: sign in (token in sessionStorage) -> load a request -> preview (plan + explain)
 * -> approve (apply with run_id + If-Match) -> live feed (/ws, resumes with since_seq and
 * epoch kept in sessionStorage) -> execute dry run / CSV / live submit behind a confirmation.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const KEYS = {
    token: "qmtl.console.token",
    seq: "qmtl.console.since_seq",
    epoch: "qmtl.console.epoch",
    feed: "qmtl.console.feed",
    request: "qmtl.console.request",
  };
  const FEED_KEEP = 100;
  const PAGE_ROWS = 500; // rows drawn at once; "Show more" draws the next page
  const ALPHA_KEYS = ["sharpe", "max_drawdown", "win_ratio", "profit_factor", "car_mdd", "rar_mdd"];
  const KEY_COLUMNS = [
    ["world", "world", false], ["venue", "venue", false], ["symbol", "symbol", false],
    ["raw_move", "raw move", true], ["crossed_qty", "crossed", true],
    ["lot_residual", "lot residual", true], ["final_delta", "delta", true],
    ["mark", "mark", true], ["notional", "notional", true], ["disposition", "disposition", false],
  ];
  const ORDER_COLUMNS = ["scope", "world_id", "strategy_id", "venue", "symbol", "side", "quantity",
    "reduce_only", "time_in_force", "client_order_id", "notional"];

  /* What to do for every documented error code (docs/errors.md). */
  const ERROR_HELP = {
    E_SCHEMA_VERSION_REQUIRED: "The WorldService requires alpha metrics: send schema_version 2 (in the request JSON or the form).",
    E_UNAUTHORIZED: "Sign in with a valid token (top right), then try again.",
    E_PERMISSION_DENIED: "Live submit needs the live-guard header: use \"Submit live…\" and confirm.",
    E_SHARED_ACCOUNT_DISABLED: "Shared-account netting is off on this gateway: untick \"shared account\" (or enable gateway.shared_account_policy).",
    E_NOT_FOUND: "The run or world is unknown to the WorldService: check the id.",
    E_METHOD_NOT_ALLOWED: "This route does not take that HTTP method: the gateway may be older than this console; check its version.",
    E_WORLDSERVICE_ERROR: "The WorldService failed on this request (relayed as 502, with its detail): fix the input it names, or report the WorldService bug. Other callers are not affected.",
    E_UNSUPPORTED_MEDIA_TYPE: "The server does not accept this body format: send JSON, or install qmtl-rebalancing[arrow] on the server for Arrow.",
    E_INPUT_NOT_STORABLE: "The database refused a value of this request (too long or out of range): fix the value; nothing was written.",
    E_RUN_ID_CONFLICT: "This run_id was already used with a different request. Click \"New run_id\" to record this request as a new run, or restore the original request to replay it.",
    E_ETAG_MISMATCH: "The stored allocations changed since you loaded them. Click \"Refresh from /allocations\", preview again and review the new plan before approving.",
    E_PAYLOAD_TOO_LARGE: "The request is over the configured body or position limit: split it, or raise the limit.",
    E_OVERLAY_CONFIG_REQUIRED: "mode is overlay: add the overlay configuration (instrument_by_world, price_by_symbol).",
    E_OVERLAY_CONFIG_INVALID: "Complete overlay.instrument_by_world and overlay.price_by_symbol for the world named below.",
    E_PLAN_INPUT_INVALID: "Fix the field named below: its figures cannot be planned (a float overflow or a missing mark).",
    E_SHARED_ACCOUNT_POLICY: "The netted orders break the shared-account limits (figures below): reduce the rebalance or change the policy.",
    E_OVERLAY_EXECUTION_AMBIGUOUS: "Give each world its own overlay instrument.",
    E_OVERLAY_EXECUTION_UNMAPPED: "Map the overlay instrument to its world in overlay.instrument_by_world.",
    E_INTERNAL: "A bug in the service: report it together with the service's log line.",
    E_REBALANCE_MODE_UNSUPPORTED: "Use mode \"scaling\" or \"overlay\"; hybrid is not supported.",
    E_WORLDSERVICE_BAD_RESPONSE: "The WorldService answered something the gateway cannot read: check that both run compatible versions.",
    E_STORE_UNAVAILABLE: "The WorldService database is unavailable; nothing was written. Retry shortly and check /health.",
    E_WORLDSERVICE_UNAVAILABLE: "The gateway cannot reach the WorldService (or its circuit breaker is open). Retry later and check /health.",
    E_COMMITLOG_UNAVAILABLE: "The commit log is unavailable; nothing was submitted. Retry with the same run_id.",
    E_WORLDSERVICE_TIMEOUT: "The WorldService did not answer in time. Retry; check its load.",
    E_UPSTREAM: "The WorldService refused the request: see the details below.",
    E_VALIDATION: "Fix the fields listed below and preview again.",
    E_CONFIG_INVALID: "A service configuration key is invalid: fix the named key and restart the service.",
    E_EVENT_INVALID: "An event on the bus could not be read and was skipped: check the publisher's version.",
    E_WS_INVALID_JSON: "The live feed sent a message the gateway could not parse: reload the page.",
    E_WS_INVALID_MESSAGE: "The live feed sent a message the gateway could not read: reload the page.",
    E_WS_INVALID_SUBSCRIBE: "The live feed subscription was refused: reload the page (the stored position is reset).",
    E_WS_UNKNOWN_TOPIC: "The gateway does not relay this topic: reload the page.",
    E_WS_UNKNOWN_MESSAGE: "The gateway did not understand a live feed message: reload the page.",
    E_NETWORK: "The gateway did not answer: check that it is running and reachable.",
    E_BAD_JSON: "Fix the request JSON (the position of the problem is given above).",
  };

  const state = {
    authRequired: null,
    requestText: "",
    plan: null,
    explain: null,
    explainError: null,
    marks: null,
    keyRows: [],
    sort: { key: "world", dir: 1 },
    keyLimit: PAGE_ROWS,
    planLimit: PAGE_ROWS,
    orders: [],
    approvedRunId: null,
    ws: null,
    wsRetry: 0,
    wsStop: false,
    seen: new Set(),
    lastPreview: null,
  };

  /* ---------------------------------------------------------------- helpers */

  const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c]));
  // Cached formatters: toLocaleString per cell costs seconds on a 10,000-row preview.
  const FORMATS = new Map();
  const numberFormat = (digits) => {
    if (!FORMATS.has(digits)) {
      FORMATS.set(digits, new Intl.NumberFormat("en-US", { maximumSignificantDigits: digits }));
    }
    return FORMATS.get(digits);
  };
  const MONEY = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const fmt = (value, digits = 10) => {
    if (typeof value !== "number") return value ?? "";
    return value === 0 ? "0" : numberFormat(digits).format(value);
  };
  const money = (value) => (typeof value === "number" ? MONEY.format(value) : "");
  const pct = (value) => (typeof value === "number" ? (value * 100).toFixed(2) + "%" : "");

  class ApiError extends Error {
    constructor(status, body, text) {
      super(`HTTP ${status}`);
      this.status = status;
      this.body = body;
      this.text = text;
    }
  }

  async function api(method, path, { body, headers = {} } = {}) {
    const sent = { Accept: "application/json", ...headers };
    const token = store.getItem(KEYS.token);
    if (token) sent.Authorization = `Bearer ${token}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers: sent, body, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, { detail: { code: "E_NETWORK", message: String(err) } }, "");
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!response.ok) throw new ApiError(response.status, json, text);
    return { status: response.status, json, headers: response.headers, text };
  }

  /* Turn any failure into {code, status, message, help, lines}. */
  function describe(err) {
    if (!(err instanceof ApiError)) {
      return { code: err.code || "E_INTERNAL", status: 0, message: err.message || String(err),
        help: ERROR_HELP[err.code] || "", lines: [] };
    }
    const detail = err.body && err.body.detail;
    if (Array.isArray(detail)) {
      return { code: "E_VALIDATION", status: err.status, message: "the request is invalid",
        help: ERROR_HELP.E_VALIDATION,
        lines: detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`) };
    }
    if (detail && typeof detail === "object") {
      const { code, message, ...context } = detail;
      const lines = Object.entries(context).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      return { code: code || `HTTP_${err.status}`, status: err.status, message: message || "",
        help: ERROR_HELP[code] || "", lines };
    }
    const code = err.status === 404 ? "E_NOT_FOUND" : `HTTP_${err.status}`;
    return { code, status: err.status, message: typeof detail === "string" ? detail : err.text,
      help: ERROR_HELP[code] || "", lines: [] };
  }

  function errorHtml(err, action) {
    const d = describe(err);
    const status = d.status ? ` (HTTP ${d.status})` : "";
    const lines = d.lines.length
      ? `<ul>${d.lines.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>` : "";
    const help = d.help ? `<div class="todo"><strong>What to do:</strong> ${esc(d.help)}</div>` : "";
    return `<div class="msg error" role="alert" data-code="${esc(d.code)}">${esc(action)} failed: `
      + `<span class="code">${esc(d.code)}</span>${status} ${esc(d.message)}${help}${lines}</div>`;
  }

  function say(html, kind = "") {
    const box = $("status");
    box.hidden = !html;
    box.className = `status ${kind}`;
    box.innerHTML = html;
  }

  function sayError(err, action, target) {
    const html = errorHtml(err, action);
    if (target) target.innerHTML = html; else say(html, "error");
    if (err instanceof ApiError && err.status === 401) markSignedOut(true);
  }

  /* ---------------------------------------------------------------- sign in / health */

  function markSignedOut(required) {
    if (required) state.authRequired = true;
    const token = store.getItem(KEYS.token);
    $("signout-button").hidden = !token;
    $("signin-state").textContent = state.authRequired === false ? "auth off: no token needed"
      : token ? "signed in" : (state.authRequired ? "sign in required" : "");
  }

  async function probeAuth() {
    try {
      await api("GET", "/allocations");
      state.authRequired = !store.getItem(KEYS.token) ? false : state.authRequired;
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        state.authRequired = true;
        return false;
      }
      return null; // the WorldService is down: auth cannot be told apart; keep going
    } finally {
      markSignedOut(false);
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (token) store.setItem(KEYS.token, token); else store.removeItem(KEYS.token);
    $("token").value = "";
    const ok = await probeAuth();
    if (ok === false) {
      store.removeItem(KEYS.token);
      say(errorHtml(new ApiError(401, { detail: { code: "E_UNAUTHORIZED",
        message: "the gateway refused this token" } }), "Sign in"), "error");
    } else {
      say(token ? "Signed in." : "No token set.", "ok");
    }
    markSignedOut(false);
    reconnectFeed();
  }

  function signOut() {
    store.removeItem(KEYS.token);
    markSignedOut(false);
    say("Signed out.", "ok");
    reconnectFeed();
  }

  async function loadHealth() {
    const caps = $("capabilities");
    try {
      const response = await fetch("/health", { cache: "no-store" });
      const health = await response.json();
      const c = health.capabilities || health;
      const chip = (text, ok) => `<span class="chip ${ok === undefined ? "" : ok ? "ok" : "bad"}">${esc(text)}</span>`;
      const effective = health.effective_rebalance_schema_version;
      caps.innerHTML = [
        chip(`gateway ${health.status}`, health.status === "ok"),
        chip(`serves schema v${c.rebalance_schema_version}`),
        chip(`alpha metrics ${c.alpha_metrics_capable ? "on" : "off"}`, c.alpha_metrics_capable),
        chip(effective ? `effective v${effective} against the WorldService`
          : "effective version unknown (WorldService not probed)", effective ? true : false),
        chip(`worldservice ${health.worldservice && health.worldservice.status}`,
          health.worldservice && health.worldservice.status === "ok"),
      ].join(" ");
      caps.dataset.schemaVersion = String(c.rebalance_schema_version);
      caps.dataset.alpha = String(c.alpha_metrics_capable);
    } catch (err) {
      caps.innerHTML = `<span class="chip bad">gateway unreachable</span>`;
    }
  }

  /* ---------------------------------------------------------------- request */

  function selectTab(which) {
    const json = which === "json";
    $("tab-json").setAttribute("aria-selected", String(json));
    $("tab-csv").setAttribute("aria-selected", String(!json));
    $("pane-json").hidden = !json;
    $("pane-csv").hidden = json;
  }

  async function loadExample() {
    const response = await fetch("/console/example.json", { cache: "no-store" });
    $("request-json").value = await response.text();
    say("Example request loaded: two crypto worlds, v2 with alpha series.", "ok");
  }

  function readFile(input, then) {
    const file = input.files && input.files[0];
    if (!file) return;
    file.text().then(then);
  }

  function parseRatios(text) {
    const trimmed = text.trim();
    if (!trimmed) return null;
    if (trimmed.startsWith("{")) return JSON.parse(trimmed);
    const out = {};
    for (const part of trimmed.split(/[,;\n]/)) {
      if (!part.trim()) continue;
      const [name, value] = part.split("=");
      const ratio = Number(value);
      if (!name || !name.trim() || !Number.isFinite(ratio)) {
        throw new Error(`"${part.trim()}" is not world=ratio`);
      }
      out[name.trim()] = ratio;
    }
    return out;
  }

  function parseCsv(text) {
    const lines = text.split(/\r?\n/).filter((l) => l.trim());
    if (!lines.length) throw new Error("the CSV is empty");
    const header = lines[0].split(",").map((h) => h.trim());
    const need = ["world_id", "strategy_id", "symbol", "qty", "mark"];
    const missing = need.filter((n) => !header.includes(n));
    if (missing.length) throw new Error(`the CSV header lacks ${missing.join(", ")}`);
    return lines.slice(1).map((line, i) => {
      const cells = line.split(",").map((c) => c.trim());
      const row = Object.fromEntries(header.map((h, k) => [h, cells[k] ?? ""]));
      const qty = Number(row.qty);
      const mark = Number(row.mark);
      if (!Number.isFinite(qty) || !Number.isFinite(mark)) {
        throw new Error(`CSV line ${i + 2}: qty and mark must be numbers`);
      }
      return { world_id: row.world_id, strategy_id: row.strategy_id, symbol: row.symbol,
        qty, mark, venue: row.venue ? row.venue : null };
    });
  }

  function buildRequest() {
    try {
      const request = {
        total_equity: Number($("f-equity").value || 0),
        world_alloc_after: parseRatios($("f-after").value) || {},
        positions: parseCsv($("csv-text").value),
      };
      const before = parseRatios($("f-before").value);
      if (before) request.world_alloc_before = before;
      if ($("f-dust").value) request.min_trade_notional = Number($("f-dust").value);
      if ($("f-version").value) request.schema_version = Number($("f-version").value);
      $("request-json").value = JSON.stringify(request, null, 2);
      selectTab("json");
      say(`Request built: ${request.positions.length} positions.`, "ok");
    } catch (err) {
      say(errorHtml({ code: "E_BAD_JSON", message: err.message }, "Building the request"), "error");
    }
  }

  function currentRequest() {
    const text = $("request-json").value;
    try {
      const parsed = JSON.parse(text);
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new Error("the request must be a JSON object");
      }
      return parsed;
    } catch (err) {
      const e = new Error(`the request is not valid JSON: ${err.message}`);
      e.code = "E_BAD_JSON";
      throw e;
    }
  }

  /* ---------------------------------------------------------------- preview */

  function markTable(request) {
    // |qty|-weighted marks per world key and per key, for order notionals.
    const acc = new Map();
    const add = (key, qty, mark) => {
      const entry = acc.get(key) || [0, 0];
      entry[0] += Math.abs(qty) * mark;
      entry[1] += Math.abs(qty);
      acc.set(key, entry);
    };
    for (const p of request.positions || []) {
      add(`${p.world_id}|${p.venue ?? ""}|${p.symbol}`, p.qty, p.mark);
      add(`*|${p.venue ?? ""}|${p.symbol}`, p.qty, p.mark);
    }
    const marks = new Map();
    for (const [key, [value, weight]] of acc) marks.set(key, weight > 0 ? value / weight : 0);
    return marks;
  }

  async function preview() {
    let request;
    try { request = currentRequest(); } catch (err) { sayError(err, "Preview"); return; }
    const text = JSON.stringify(request);
    say("Planning…");
    const started = performance.now();
    const [plan, explain] = await Promise.allSettled([
      api("POST", "/rebalancing/plan", { body: text }),
      api("POST", "/rebalancing/explain", { body: text }),
    ]);
    if (plan.status === "rejected") {
      sayError(plan.reason, "Preview");
      return;
    }
    const fetched = performance.now();
    state.requestText = text;
    store.setItem(KEYS.request, $("request-json").value);
    state.plan = plan.value.json;
    // An older WorldService has no explain route: show the plan on its own.
    state.explainError = explain.status === "rejected" ? explain.reason : null;
    state.explain = explain.status === "fulfilled" ? explain.value.json
      : planOnlyExplanation(request, state.plan);
    state.marks = markTable(request);
    renderPreview();
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    const rendered = performance.now();
    state.lastPreview = { positions: (request.positions || []).length, keyRows: state.keyRows.length,
      fetchMs: fetched - started, renderMs: rendered - fetched };
    document.body.dataset.previewRenderMs = String(Math.round(rendered - fetched));
    say(`Preview ready: schema v${state.plan.schema_version}, ${Object.keys(state.plan.per_world).length} worlds, `
      + `${state.keyRows.length} explained keys (planned in ${Math.round(fetched - started)} ms, `
      + `rendered in ${Math.round(rendered - fetched)} ms).`, "ok");
    ["approve-panel", "execute-panel"].forEach((id) => { $(id).hidden = false; });
    if (!$("run-id").value) newRunId();
    refreshEtag(true);
  }

  function planOnlyExplanation(request, plan) {
    const before = request.world_alloc_before || {};
    const after = request.world_alloc_after || {};
    const perWorld = {};
    for (const [world, p] of Object.entries(plan.per_world)) {
      perWorld[world] = { world_id: world, alloc_before: before[world] ?? null,
        alloc_after: after[world] ?? 0, scale_world: p.scale_world,
        scale_by_strategy: p.scale_by_strategy, keys: [] };
    }
    return { mode: request.mode || "scaling", total_equity: request.total_equity,
      min_trade_notional: request.min_trade_notional ?? null, per_world: perWorld };
  }

  function bar(label, ratio, kind) {
    const width = Math.max(0, Math.min(1, ratio || 0)) * 100;
    return `<span>${label}</span><span class="bar-track" role="img" aria-label="${label} ${pct(ratio)}">`
      + `<span class="bar-fill ${kind}" style="display:block;width:${width}%"></span></span>`
      + `<span class="num">${pct(ratio)}</span>`;
  }

  function renderWorlds() {
    const plan = state.plan;
    const cards = Object.values(state.explain.per_world).map((w) => {
      const planned = plan.per_world[w.world_id] || { deltas: [], scale_by_strategy: {} };
      const strategies = Object.entries(w.scale_by_strategy || {})
        .map(([s, g]) => `${esc(s)} ×${fmt(g, 6)}`).join(", ");
      return `<article class="world" data-world="${esc(w.world_id)}"><h4>${esc(w.world_id)}</h4>`
        + `<div class="bars">${bar("before", w.alloc_before, "before")}${bar("after", w.alloc_after, "after")}</div>`
        + `<dl class="figures"><dt>scale</dt><dd>×${fmt(w.scale_world, 8)}</dd>`
        + `<dt>turnover</dt><dd class="turnover">${pct(w.turnover)}</dd>`
        + `<dt>traded notional</dt><dd>${money(w.traded_notional)}</dd>`
        + `<dt>net before → after</dt><dd>${money(w.net_notional_before)} → ${money(w.net_notional_after)}</dd>`
        + `<dt>gross before → after</dt><dd>${money(w.gross_notional_before)} → ${money(w.gross_notional_after)}</dd>`
        + `<dt>deltas</dt><dd>${planned.deltas.length}</dd></dl>`
        + (strategies ? `<div class="muted">strategies: ${strategies}</div>` : "")
        + `</article>`;
    });
    $("worlds").innerHTML = cards.join("") || "<p class=\"muted\">no world in the plan</p>";
  }

  function more(table, total, shown) {
    return total > shown
      ? `<p class="more">Showing ${shown} of ${total} rows. <button type="button" data-more="${table}">`
        + `Show ${Math.min(PAGE_ROWS, total - shown)} more</button></p>` : "";
  }

  function renderPlanDeltas() {
    const rows = [];
    for (const [world, p] of Object.entries(state.plan.per_world)) {
      for (const d of p.deltas) rows.push([world, d.venue, d.symbol, d.delta_qty]);
    }
    for (const d of state.plan.global_deltas || []) rows.push(["(global)", d.venue, d.symbol, d.delta_qty]);
    for (const d of state.plan.overlay_deltas || []) rows.push([`${d.world_id} (overlay)`, d.venue, d.symbol, d.delta_qty]);
    const body = rows.slice(0, state.planLimit).map((r) => `<tr><td>${esc(r[0])}</td><td>${esc(r[1])}</td>`
      + `<td>${esc(r[2])}</td><td class="num">${fmt(r[3])}</td></tr>`).join("");
    $("plan-deltas").innerHTML = `<table id="plan-table"><thead><tr><th scope="col">world</th>`
      + `<th scope="col">venue</th><th scope="col">symbol</th><th scope="col">delta_qty</th></tr></thead>`
      + `<tbody>${body || "<tr><td colspan=\"4\" class=\"muted\">no deltas</td></tr>"}</tbody></table>`
      + more("plan", rows.length, state.planLimit);
  }

  function renderKeys() {
    if (state.explainError) {
      $("explain-keys").innerHTML = errorHtml(state.explainError, "Explain")
        + "<p class=\"muted\">The plan is shown without its explanation.</p>";
      $("key-count").textContent = "";
      return;
    }
    const needle = $("key-filter").value.trim().toLowerCase();
    const disposition = $("key-disposition").value;
    const { key, dir } = state.sort;
    const numeric = KEY_COLUMNS.find((c) => c[0] === key)[2];
    let rows = state.keyRows.filter((r) => (!disposition || r.disposition === disposition)
      && (!needle || r.search.includes(needle)));
    rows = rows.slice().sort((a, b) => {
      const x = a[key] ?? "";
      const y = b[key] ?? "";
      if (numeric) return (x - y) * dir;
      return (x < y ? -1 : x > y ? 1 : 0) * dir; // code-point order: localeCompare is slow
    });
    const head = KEY_COLUMNS.map(([k, label]) => {
      const sorted = k === key ? (dir > 0 ? "ascending" : "descending") : "none";
      const arrow = k === key ? (dir > 0 ? " ▲" : " ▼") : "";
      return `<th scope="col" aria-sort="${sorted}"><button type="button" data-sort="${k}">${label}${arrow}</button></th>`;
    }).join("");
    const body = rows.slice(0, state.keyLimit).map((r) => `<tr class="d-${r.disposition}"><td>${esc(r.world)}</td>`
      + `<td>${esc(r.venue)}</td><td>${esc(r.symbol)}</td><td class="num">${fmt(r.raw_move)}</td>`
      + `<td class="num">${fmt(r.crossed_qty)}</td><td class="num">${fmt(r.lot_residual)}</td>`
      + `<td class="num">${fmt(r.final_delta)}</td><td class="num">${fmt(r.mark)}</td>`
      + `<td class="num">${money(r.notional)}</td><td>${esc(r.disposition)}${r.dropped_as_dust
        ? ` (${money(r.rounded_notional)} &lt; ${money(state.explain.min_trade_notional)})` : ""}</td></tr>`).join("");
    $("explain-keys").innerHTML = `<table id="explain-table"><thead><tr>${head}</tr></thead>`
      + `<tbody>${body || `<tr><td colspan="${KEY_COLUMNS.length}" class="muted">no key moves</td></tr>`}</tbody></table>`
      + more("keys", rows.length, state.keyLimit);
    $("key-count").textContent = `${rows.length} of ${state.keyRows.length} keys`
      + (rows.length > state.keyLimit ? ` (first ${state.keyLimit} shown)` : "");
  }

  function renderAlpha() {
    const envelope = state.plan.alpha_metrics;
    $("alpha").hidden = !envelope;
    if (!envelope) return;
    const coverage = envelope.coverage || { per_world: {}, per_strategy: {} };
    const row = (scope, world, strategy, values, cov) => `<tr><td>${esc(scope)}</td><td>${esc(world)}</td>`
      + `<td>${esc(strategy)}</td>${ALPHA_KEYS.map((k) => `<td class="num">${fmt(values[`alpha_performance.${k}`], 6)}</td>`).join("")}`
      + `<td class="num">${cov ? cov.observations : ""}</td><td>${cov ? esc((cov.undefined || []).join(", ")) : ""}</td></tr>`;
    const rows = [];
    for (const [world, values] of Object.entries(envelope.per_world || {})) {
      rows.push(row("world", world, "", values, (coverage.per_world || {})[world]));
    }
    for (const [strategy, worlds] of Object.entries(envelope.per_strategy || {})) {
      for (const [world, values] of Object.entries(worlds)) {
        rows.push(row("strategy", world, strategy, values,
          ((coverage.per_strategy || {})[strategy] || {})[world]));
      }
    }
    $("alpha-table").innerHTML = `<table><thead><tr><th>scope</th><th>world</th><th>strategy</th>`
      + ALPHA_KEYS.map((k) => `<th>${k}</th>`).join("") + `<th>observations</th><th>undefined</th></tr></thead>`
      + `<tbody>${rows.join("")}</tbody></table>`;
  }

  function renderPreview() {
    state.keyRows = [];
    state.keyLimit = PAGE_ROWS;
    state.planLimit = PAGE_ROWS;
    for (const w of Object.values(state.explain.per_world)) {
      for (const k of w.keys) {
        state.keyRows.push({ ...k, world: w.world_id, venue: k.venue ?? "",
          search: `${w.world_id} ${k.venue ?? ""} ${k.symbol}`.toLowerCase() });
      }
    }
    $("preview-panel").hidden = false;
    const p = state.plan;
    $("preview-summary").textContent = `schema v${p.schema_version} · mode ${state.explain.mode} · `
      + `total equity ${money(state.explain.total_equity)} · dust threshold `
      + `${state.explain.min_trade_notional == null ? "off" : money(state.explain.min_trade_notional)}`
      + (p.rebalance_intent && Object.keys(p.rebalance_intent.meta || {}).length
        ? ` · intent ${JSON.stringify(p.rebalance_intent.meta)}` : "");
    renderWorlds();
    renderPlanDeltas();
    renderKeys();
    renderAlpha();
  }

  /* ---------------------------------------------------------------- approve */

  function newRunId() {
    const stamp = new Date().toISOString().replace(/[-:.TZ]/g, "").slice(0, 14);
    $("run-id").value = `console-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
  }

  async function refreshEtag(quiet) {
    try {
      const response = await api("GET", "/allocations");
      $("if-match").value = response.headers.get("ETag") || (response.json && response.json.etag
        ? `"${response.json.etag}"` : "");
      if (!quiet) say("If-Match refreshed from the stored allocations.", "ok");
    } catch (err) {
      if (!quiet) sayError(err, "Reading /allocations");
    }
  }

  async function approve() {
    const target = $("apply-result");
    let request;
    try { request = currentRequest(); } catch (err) { sayError(err, "Approve", target); return; }
    const runId = $("run-id").value.trim();
    if (!runId) newRunId();
    request.run_id = $("run-id").value.trim();
    const headers = {};
    if ($("if-match").value.trim()) headers["If-Match"] = $("if-match").value.trim();
    target.innerHTML = "<div class=\"msg\">Applying…</div>";
    try {
      const response = await api("POST", "/rebalancing/apply", { body: JSON.stringify(request), headers });
      const worlds = Object.keys(response.json.per_world || {}).length;
      const replayed = response.headers.get("Idempotent-Replayed") === "true";
      state.approvedRunId = response.json.run_id;
      const etag = response.headers.get("ETag");
      if (etag) $("if-match").value = etag;
      target.innerHTML = replayed
        ? `<div class="msg ok" role="status" data-outcome="replayed">Replayed: run <strong>${esc(response.json.run_id)}</strong> `
          + "was already recorded with this request; nothing new was published.</div>"
        : `<div class="msg ok" role="status" data-outcome="recorded">Recorded run <strong>${esc(response.json.run_id)}</strong>: `
          + `${worlds} event${worlds === 1 ? "" : "s"} published (one per world). New If-Match ${esc(etag || "")}.</div>`;
    } catch (err) {
      sayError(err, "Approve", target);
    }
  }

  /* ---------------------------------------------------------------- execute */

  function orderRows(doc) {
    const rows = [];
    const mark = (world, o) => state.marks
      ? state.marks.get(`${world}|${o.venue ?? ""}|${o.symbol}`) : undefined;
    const push = (scope, world, strategy, o) => {
      const m = mark(world || "*", o);
      rows.push({ scope, world_id: world, strategy_id: strategy, venue: o.venue ?? "",
        symbol: o.symbol, side: o.side, quantity: o.quantity,
        reduce_only: o.reduce_only === undefined || o.reduce_only === null ? "" : String(o.reduce_only),
        time_in_force: o.time_in_force, client_order_id: o.client_order_id,
        notional: m === undefined ? "" : Math.abs(o.quantity) * m });
    };
    for (const [world, orders] of Object.entries(doc.orders_per_world || {})) {
      for (const o of orders) push("per_world", world, "", o);
    }
    for (const [world, strategies] of Object.entries(doc.orders_per_strategy || {})) {
      for (const [strategy, orders] of Object.entries(strategies)) {
        for (const o of orders) push("per_strategy", world, strategy, o);
      }
    }
    for (const o of doc.orders_global || []) push("global", "", "", o);
    return rows;
  }

  function renderOrders(doc) {
    state.orders = orderRows(doc);
    const rows = state.orders;
    // One line per scope: per-world and per-strategy orders are two views of the same trades.
    const scopes = new Map();
    for (const r of rows) {
      const s = scopes.get(r.scope) || { count: 0, reduce: 0, notional: 0 };
      s.count += 1;
      s.reduce += r.reduce_only === "true" ? 1 : 0;
      s.notional += typeof r.notional === "number" ? r.notional : 0;
      scopes.set(r.scope, s);
    }
    const parts = [...scopes].map(([scope, s]) => `${scope}: ${s.count} orders, ${s.reduce} reduce-only, `
      + `notional ${money(s.notional)}`);
    $("orders-summary").textContent = `${doc.submitted ? "Submitted" : "Dry run"}: `
      + (parts.join(" · ") || "no orders")
      + (doc.batch_ids && doc.batch_ids.length ? ` · batches ${doc.batch_ids.join(", ")}` : "")
      + ` · schema v${doc.rebalance_schema_version}`;
    const body = rows.map((r) => `<tr>${ORDER_COLUMNS.map((c) => `<td class="${typeof r[c] === "number" ? "num" : ""}">`
      + `${esc(c === "notional" ? money(r[c]) : typeof r[c] === "number" ? fmt(r[c]) : r[c])}</td>`).join("")}</tr>`).join("");
    $("orders").innerHTML = `<table id="orders-table"><thead><tr>${ORDER_COLUMNS.map((c) => `<th scope="col">${c}</th>`).join("")}`
      + `</tr></thead><tbody>${body || `<tr><td colspan="${ORDER_COLUMNS.length}" class="muted">no orders</td></tr>`}</tbody></table>`;
    $("download-csv").disabled = rows.length === 0;
    $("submit-live").disabled = doc.submitted || rows.length === 0;
  }

  async function execute(submit) {
    let request;
    try { request = currentRequest(); } catch (err) { sayError(err, "Execute"); return; }
    const params = new URLSearchParams({
      per_strategy: String($("per-strategy").checked),
      shared_account: String($("shared-account").checked),
      submit: String(submit),
    });
    const headers = {};
    if (submit) {
      headers["X-Allow-Live"] = "true";
      request.run_id = state.approvedRunId || $("run-id").value.trim() || undefined;
    } else {
      delete request.run_id; // a dry run records nothing
    }
    try {
      const response = await api("POST", `/rebalancing/execute?${params}`, { body: JSON.stringify(request), headers });
      renderOrders(response.json);
      say(submit ? "Orders submitted to the commit log." : "Dry run ready: nothing was submitted.", "ok");
    } catch (err) {
      sayError(err, submit ? "Live submit" : "Dry run");
    }
  }

  function csvCell(value) {
    const text = String(value ?? "");
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, "\"\"")}"` : text;
  }

  function downloadCsv() {
    const lines = [ORDER_COLUMNS.join(",")].concat(state.orders.map((r) => ORDER_COLUMNS
      .map((c) => csvCell(c === "notional" && typeof r[c] === "number" ? r[c].toFixed(2) : r[c])).join(",")));
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "qmtl-orders.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function confirmLive() {
    const dialog = $("confirm-live");
    $("confirm-text").textContent = `${state.orders.length} orders, run_id ${state.approvedRunId || $("run-id").value || "(none)"}.`;
    $("confirm-word").value = "";
    $("confirm-submit").disabled = true;
    dialog.returnValue = ""; // Esc must not repeat an earlier "submit"
    dialog.showModal();
    $("confirm-word").focus();
  }

  /* ---------------------------------------------------------------- live feed */

  function storedFeed() {
    try { return JSON.parse(store.getItem(KEYS.feed) || "[]"); } catch (_) { return []; }
  }

  function renderFeed(freshId) {
    const items = storedFeed();
    $("feed").innerHTML = items.slice().reverse().map((e) => `<li data-id="${esc(e.id)}" data-run="${esc(e.run_id)}"`
      + `${e.id === freshId ? " class=\"fresh\"" : ""}>seq ${e.seq} · <strong>${esc(e.world_id)}</strong> · run `
      + `${esc(e.run_id)} · ${e.deltas} deltas · v${esc(e.schema_version)} · ${esc(e.time)}</li>`).join("");
  }

  function feedState(text) { $("feed-state").textContent = text; }

  function onEvent(message) {
    const seq = message.seq;
    if (state.seen.has(message.id)) return;
    state.seen.add(message.id);
    const data = message.data || {};
    const items = storedFeed();
    items.push({ id: message.id, seq, world_id: data.world_id, run_id: data.run_id,
      deltas: ((data.plan || {}).deltas || []).length, schema_version: data.schema_version,
      time: message.time || "" });
    store.setItem(KEYS.feed, JSON.stringify(items.slice(-FEED_KEEP)));
    // The latest, not the largest: seqs only grow within one gateway run, and after a
    // restart (seen without an epoch) the new, smaller seqs must become the resume point.
    if (typeof seq === "number") store.setItem(KEYS.seq, String(seq));
    renderFeed(message.id);
  }

  function subscribe(ws) {
    const since = store.getItem(KEYS.seq);
    const epoch = store.getItem(KEYS.epoch);
    const message = { type: "subscribe", topics: ["rebalancing"],
      since_seq: since === null ? 0 : Number(since) };
    // The epoch names the sequence space `since` belongs to: the gateway resumes only within
    // it, and answers another epoch with `recovered: false` and its whole history.
    if (epoch !== null) message.epoch = epoch;
    ws.send(JSON.stringify(message));
  }

  function onSubscribed(ws, message) {
    state.wsRetry = 0;
    const since = store.getItem(KEYS.seq);
    // `epoch` names the gateway's sequence space; older gateways do not send it.
    if (message.epoch !== undefined && message.epoch !== null) {
      const known = store.getItem(KEYS.epoch);
      store.setItem(KEYS.epoch, String(message.epoch));
      if (known !== null && known !== String(message.epoch) && since !== null) {
        // The gateway saw our old epoch and is already replaying its history.
        store.setItem(KEYS.seq, "0");
        feedState("the gateway restarted (new epoch): replaying its history");
        return;
      }
    }
    const from = since === null ? "its history" : `seq ${since}`;
    feedState(message.recovered === false && since !== null && Number(since) > 0
      ? `connected; events before seq ${since} may have been missed (outside the gateway's history)`
      : `connected, resumed from ${from}`);
  }

  function connectFeed() {
    if (state.ws || state.wsStop) return;
    const token = store.getItem(KEYS.token);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ""}`;
    const ws = new WebSocket(url);
    state.ws = ws;
    feedState("connecting…");
    ws.onopen = () => subscribe(ws);
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      if (message.type === "subscribed") onSubscribed(ws, message);
      else if (message.type === "error") {
        say(errorHtml({ code: message.code, message: message.message }, "Live feed"), "error");
      } else if (message.type === "rebalancing.planned") onEvent(message);
    };
    ws.onclose = (event) => {
      if (state.ws === ws) state.ws = null;
      if (event.code === 1008) {
        feedState("disconnected: sign in to receive events (E_UNAUTHORIZED)");
        markSignedOut(true);
        return;
      }
      if (state.wsStop) return;
      const delay = Math.min(10000, 500 * 2 ** state.wsRetry++);
      feedState(`disconnected (code ${event.code}); reconnecting in ${Math.round(delay / 1000)} s`);
      setTimeout(connectFeed, delay);
    };
  }

  function reconnectFeed() {
    if (state.ws) {
      const old = state.ws;
      state.ws = null;
      old.onclose = null;
      old.close();
    }
    connectFeed();
  }

  /* ---------------------------------------------------------------- wiring */

  function wire() {
    $("signin").addEventListener("submit", signIn);
    $("signout-button").addEventListener("click", signOut);
    $("tab-json").addEventListener("click", () => selectTab("json"));
    $("tab-csv").addEventListener("click", () => selectTab("csv"));
    $("load-example").addEventListener("click", loadExample);
    $("json-file").addEventListener("change", (e) => readFile(e.target, (t) => { $("request-json").value = t; }));
    $("csv-file").addEventListener("change", (e) => readFile(e.target, (t) => { $("csv-text").value = t; }));
    $("build-request").addEventListener("click", buildRequest);
    $("preview").addEventListener("click", preview);
    $("request-json").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); preview(); }
    });
    const refilter = () => { state.keyLimit = PAGE_ROWS; renderKeys(); };
    $("key-filter").addEventListener("input", refilter);
    $("key-disposition").addEventListener("change", refilter);
    $("plan-deltas").addEventListener("click", (e) => {
      if (!e.target.closest("button[data-more]")) return;
      state.planLimit += PAGE_ROWS;
      renderPlanDeltas();
    });
    $("explain-keys").addEventListener("click", (e) => {
      if (e.target.closest("button[data-more]")) {
        state.keyLimit += PAGE_ROWS;
        renderKeys();
        return;
      }
      const button = e.target.closest("button[data-sort]");
      if (!button) return;
      const key = button.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      renderKeys();
      const again = $("explain-keys").querySelector(`button[data-sort="${key}"]`);
      if (again) again.focus();
    });
    $("new-run-id").addEventListener("click", newRunId);
    $("refresh-etag").addEventListener("click", () => refreshEtag(false));
    $("approve").addEventListener("click", approve);
    $("dry-run").addEventListener("click", () => execute(false));
    $("download-csv").addEventListener("click", downloadCsv);
    $("submit-live").addEventListener("click", confirmLive);
    $("confirm-word").addEventListener("input", (e) => {
      $("confirm-submit").disabled = e.target.value.trim() !== "SUBMIT";
    });
    $("confirm-live").addEventListener("close", () => {
      if ($("confirm-live").returnValue === "submit") execute(true);
    });
  }

  async function start() {
    wire();
    const saved = store.getItem(KEYS.request);
    if (saved) $("request-json").value = saved;
    for (const item of storedFeed()) state.seen.add(item.id);
    renderFeed(null);
    markSignedOut(false);
    await loadHealth();
    await probeAuth();
    connectFeed();
  }

  window.qmtlConsole = { state, describe, ERROR_HELP };
  start();
})();
