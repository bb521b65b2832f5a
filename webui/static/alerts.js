// The alerts page: sparklines of recent values (inline SVG), a rule's history and deliveries,
// and, for editors, the rule and silence forms. Everything goes through the JSON API.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  let rules = {};

  async function api(method, url, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrf() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(url, { method, credentials: "same-origin", headers,
                                    body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await resp.text();
    const data = text ? JSON.parse(text) : null;
    if (!resp.ok) throw new Error((data && data.error ? (data.param ? data.param + ": " : "") + data.error : resp.statusText));
    return data;
  }

  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A polyline of the values (null ones are gaps in time, drawn as nothing), the threshold dashed.
  function sparkline(values, threshold, width, height) {
    const svg = el("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
    const points = values.filter((p) => p.v !== null && p.v !== undefined);
    const title = el("title", {}, points.length ? `last ${points.length} values, newest ${points[points.length - 1].v}` : "no values yet");
    svg.appendChild(title);
    if (!points.length) return svg;
    const ys = points.map((p) => p.v);
    if (threshold !== null && threshold !== undefined) ys.push(threshold);
    const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1, pad = 2;
    const x = (i) => pad + (points.length === 1 ? (width - 2 * pad) : i * (width - 2 * pad) / (points.length - 1));
    const y = (v) => height - pad - (v - lo) / span * (height - 2 * pad);
    if (threshold !== null && threshold !== undefined) {
      svg.appendChild(el("line", { class: "threshold", x1: 0, x2: width, y1: y(threshold), y2: y(threshold) }));
    }
    svg.appendChild(el("polyline", { points: points.map((p, i) => `${x(i).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ") }));
    const last = points.length - 1;
    svg.appendChild(el("circle", { cx: x(last), cy: y(points[last].v), r: 2 }));
    return svg;
  }

  async function loadRules() {
    const data = await api("GET", "/api/alerts");
    rules = {};
    for (const rule of data.rules) {
      rules[rule.id] = rule;
      const cell = document.querySelector(`td.spark[data-id="${CSS.escape(rule.id)}"]`);
      if (cell) cell.replaceChildren(sparkline(rule.values, rule.kind === "silence" ? null : rule.threshold, 140, 26));
    }
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c === null || c === undefined ? "" : String(c); tr.appendChild(td); }
    return tr;
  }

  async function showHistory(id) {
    const data = await api("GET", `/api/alerts/${encodeURIComponent(id)}/history`);
    const section = document.getElementById("history");
    section.querySelector(".which").textContent = data.rule;
    const rule = rules[id];
    section.querySelector(".spark-big").replaceChildren(sparkline(data.values, rule && rule.kind !== "silence" ? rule.threshold : null, 480, 60));
    section.querySelector(".changes").replaceChildren(...data.history.map((h) => row([h.at, h.from, h.to, h.value])));
    section.querySelector(".deliveries").replaceChildren(...data.deliveries.map((d) =>
      row([d.at, d.notifier, d.state, d.outcome + (d.error ? ` (${d.error})` : ""), d.attempts])));
    section.hidden = false;
  }

  function showKindFields(form) {
    const kind = form.elements.kind.value;
    for (const label of form.querySelectorAll("[class*='kind-']")) {
      label.hidden = !label.classList.contains(`kind-${kind}`);
    }
  }

  function fillForm(form, rule) {
    form.elements.id.value = rule.id;
    for (const key of ["name", "kind", "query", "of", "host", "app", "file"]) form.elements[key].value = rule[key] || "";
    form.elements.window.value = `${rule.window || 300}s`;
    form.elements.comparison.value = rule.above !== undefined && rule.above !== null ? "above" : "below";
    form.elements.threshold.value = rule.threshold;
    form.elements.for.value = `${rule.for}s`;
    form.elements.every.value = `${rule.every}s`;
    form.elements.repeat.value = `${rule.repeat}s`;
    for (const box of form.querySelectorAll('input[name="notify"]')) box.checked = rule.notify.includes(box.value);
    document.querySelector("#rule-editor .title").textContent = `Edit ${rule.name}`;
    showKindFields(form);
    form.scrollIntoView();
  }

  function ruleBody(form) {
    const f = form.elements, kind = f.kind.value;
    const body = { name: f.name.value.trim(), kind, for: f.for.value.trim() || "0s", every: f.every.value.trim() || "30s",
                   repeat: f.repeat.value.trim() || "4h",
                   notify: [...form.querySelectorAll('input[name="notify"]:checked')].map((b) => b.value) };
    if (f.query.value.trim()) body.query = f.query.value.trim();
    if (kind === "silence") {
      for (const key of ["host", "app", "file"]) if (f[key].value.trim()) body[key] = f[key].value.trim();
    } else {
      body.window = f.window.value.trim();
      body[f.comparison.value] = Number(f.threshold.value);
      if (kind === "ratio") body.of = f.of.value.trim();
    }
    return body;
  }

  function failed(form, error) {
    const p = form.querySelector(".form-error");
    p.textContent = error.message;
    p.hidden = false;
  }

  function matchers(text) {
    const out = {};
    for (const pair of text.split(/\s+/).filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at > 0) out[pair.slice(0, at)] = pair.slice(at + 1);
    }
    return out;
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page !== "alerts") return;
    loadRules().catch(() => {});
    document.addEventListener("click", (ev) => {
      const target = ev.target.closest("button");
      if (!target) return;
      const id = target.dataset.id;
      if (target.classList.contains("show-history")) showHistory(id).catch(() => {});
      if (target.classList.contains("edit-rule") && rules[id]) fillForm(document.getElementById("rule-form"), rules[id]);
      if (target.classList.contains("delete-rule") && window.confirm("Delete this rule?")) {
        api("DELETE", `/api/alerts/${encodeURIComponent(id)}`).then(() => window.location.reload(), (e) => window.alert(e.message));
      }
      if (target.classList.contains("delete-silence")) {
        api("DELETE", `/api/silences/${encodeURIComponent(id)}`).then(() => window.location.reload(), (e) => window.alert(e.message));
      }
    });
    const form = document.getElementById("rule-form");
    if (form) {
      showKindFields(form);
      form.elements.kind.addEventListener("change", () => showKindFields(form));
      document.getElementById("rule-reset").addEventListener("click", () => { form.reset(); form.elements.id.value = ""; showKindFields(form); });
      form.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const id = form.elements.id.value;
        const call = id ? api("PUT", `/api/alerts/${encodeURIComponent(id)}`, ruleBody(form)) : api("POST", "/api/alerts", ruleBody(form));
        call.then(() => window.location.reload(), (e) => failed(form, e));
      });
    }
    const silence = document.getElementById("silence-form");
    if (silence) {
      silence.addEventListener("submit", (ev) => {
        ev.preventDefault();
        const f = silence.elements, body = { for: f.for.value.trim(), comment: f.comment.value };
        if (f.rule.value) body.rule = f.rule.value;
        const m = matchers(f.matchers.value);
        if (Object.keys(m).length) body.matchers = m;
        api("POST", "/api/silences", body).then(() => window.location.reload(), (e) => failed(silence, e));
      });
    }
  });
})();
