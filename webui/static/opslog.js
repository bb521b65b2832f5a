// opslog UI: local times, time pickers, the volume histogram and the host calendar (live tail: tail.js).
// Log text only ever reaches the page through textContent / createTextNode: never as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const LEVEL_ORDER = ["critical", "error", "warning", "info", "debug", "none"];
  const pad = (n, w = 2) => String(n).padStart(w, "0");

  function localText(d, withMs = true) {
    const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((t) => {
      const iso = t.getAttribute("datetime");
      const d = new Date(iso);
      if (!isNaN(d)) {
        t.textContent = localText(d);
        t.title = `UTC ${iso}`;
      }
    });
  }

  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // Message text with case-insensitive matches of q wrapped in <mark>, built from text nodes.
  function highlighted(text, q) {
    const frag = document.createDocumentFragment();
    if (!q) {
      frag.appendChild(document.createTextNode(text));
      return frag;
    }
    const hay = text.toLowerCase(), needle = q.toLowerCase();
    let pos = 0, at;
    while (needle && (at = hay.indexOf(needle, pos)) !== -1) {
      frag.appendChild(document.createTextNode(text.slice(pos, at)));
      frag.appendChild(el("mark", {}, text.slice(at, at + needle.length)));
      pos = at + needle.length;
    }
    frag.appendChild(document.createTextNode(text.slice(pos)));
    return frag;
  }

  function initPickers() {
    document.querySelectorAll("input.time-text[data-picker]").forEach((input) => {
      const picker = document.getElementById(input.dataset.picker);
      if (!picker) return;
      picker.addEventListener("change", () => {
        const d = new Date(picker.value); // datetime-local is the browser's local time
        if (!isNaN(d)) input.value = d.toISOString();
      });
    });
  }

  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (resp.status === 401) throw new Error("signed out: reload the page to sign in again");
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    return resp.json();
  }

  // ---- histogram -----------------------------------------------------------------------------

  function drawHistogram(fig, data) {
    const plot = fig.querySelector(".plot");
    const buckets = data.buckets;
    const W = Math.max(plot.clientWidth || 1000, 300), H = 110, left = 44, bottom = 18, top = 6;
    const max = Math.max(1, ...buckets.map((b) => b.count || 0));
    const bw = (W - left - 4) / Math.max(1, buckets.length);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, role: "img" });
    const total = buckets.reduce((s, b) => s + (b.count || 0), 0);
    root.appendChild(svg("line", { x1: left, y1: H - bottom, x2: W - 2, y2: H - bottom, class: "axis" }));
    const label = svg("text", { x: left - 4, y: top + 8, class: "tick", "text-anchor": "end" });
    label.textContent = max.toLocaleString();
    root.appendChild(label);
    const zero = svg("text", { x: left - 4, y: H - bottom, class: "tick", "text-anchor": "end" });
    zero.textContent = "0";
    root.appendChild(zero);
    const base = new URL(fig.dataset.search, location.href);
    const params = new URL(fig.dataset.src, location.href).searchParams;
    const every = Math.max(1, Math.ceil(buckets.length / Math.floor((W - left) / 110)));
    buckets.forEach((b, i) => {
      const x = left + i * bw;
      const start = new Date(b.start), end = new Date(start.getTime() + data.bucket_seconds * 1000);
      const g = svg("g", { class: "bucket" });
      const title = svg("title");
      if (b.count === null) {
        g.appendChild(svg("rect", { x, y: top, width: Math.max(1, bw - 1), height: H - bottom - top, class: "bar-unknown" }));
        title.textContent = `${localText(start, false)}: still counting…`;
      } else {
        let y = H - bottom;
        const parts = [];
        for (const lv of LEVEL_ORDER) {
          const n = (b.levels || {})[lv] || 0;
          if (!n) continue;
          const h = (n / max) * (H - bottom - top);
          y -= h;
          g.appendChild(svg("rect", { x, y, width: Math.max(1, bw - 1), height: Math.max(h, 0.5), class: `bar-${lv}` }));
          parts.push(`${lv} ${n.toLocaleString()}`);
        }
        title.textContent = `${localText(start, false)} – ${localText(end, false)}: ${b.count.toLocaleString()}` +
          (parts.length ? ` (${parts.join(", ")})` : "") + `\nUTC ${b.start}`;
      }
      // An invisible full-height target makes thin bars easy to hover and click.
      g.appendChild(svg("rect", { x, y: top, width: Math.max(1, bw), height: H - bottom - top, class: "hit" }));
      g.appendChild(title);
      g.addEventListener("click", () => {
        const next = new URLSearchParams(params);
        next.set("since", start.toISOString());
        next.set("until", end.toISOString());
        location.href = `${base.pathname}?${next.toString()}`;
      });
      root.appendChild(g);
      if (i % every === 0) {
        const t = svg("text", { x, y: H - 4, class: "tick" });
        t.textContent = data.bucket_seconds >= 86400 ? localText(start, false).slice(0, 10)
          : localText(start, false).slice(data.bucket_seconds >= 3600 ? 5 : 11, 16);
        root.appendChild(t);
      }
    });
    plot.replaceChildren(root);
    const cap = fig.querySelector("figcaption");
    cap.textContent = `Volume by level · ${total.toLocaleString()} records · ${data.bucket_seconds / 60} min buckets` +
      (data.text_filter_applied ? "" : " · text filter not applied (window too large to count it)") +
      (data.complete ? "" : " · filling…");
  }

  async function initHistogram(fig, attempt = 0) {
    try {
      const data = await getJSON(fig.dataset.src);
      drawHistogram(fig, data);
      if (!data.complete && attempt < 60) setTimeout(() => initHistogram(fig, attempt + 1), 1000);
    } catch (e) {
      fig.querySelector(".plot").replaceChildren(el("span", { class: "error" }, `histogram: ${e.message}`));
    }
  }

  // ---- calendar ------------------------------------------------------------------------------

  function drawCalendar(fig, data) {
    const cell = 13, gap = 2, top = 14, left = 28;
    const days = data.days;
    const first = new Date(`${days[0].date}T00:00:00Z`);
    const offset = (first.getUTCDay() + 6) % 7; // Monday first
    const weeks = Math.ceil((days.length + offset) / 7);
    const max = Math.max(1, ...days.map((d) => d.count || 0));
    const root = svg("svg", { width: left + weeks * (cell + gap), height: top + 7 * (cell + gap), role: "img" });
    ["Mon", "Wed", "Fri"].forEach((name, i) => {
      const t = svg("text", { x: 0, y: top + (i * 2) * (cell + gap) + cell - 2, class: "tick" });
      t.textContent = name;
      root.appendChild(t);
    });
    const base = new URL(fig.dataset.search, location.href);
    days.forEach((d, i) => {
      const k = i + offset, x = left + Math.floor(k / 7) * (cell + gap), y = top + (k % 7) * (cell + gap);
      const date = new Date(`${d.date}T00:00:00Z`);
      if (date.getUTCDate() === 1 || (i === 0 && date.getUTCDate() <= 21)) {
        const m = svg("text", { x, y: top - 4, class: "tick" });
        m.textContent = date.toLocaleString(undefined, { month: "short", timeZone: "UTC" });
        root.appendChild(m);
      }
      let cls = "cal-unknown";
      if (d.count !== null) cls = d.count === 0 ? "cal-0" : `cal-${Math.min(4, 1 + Math.floor((d.count / max) * 3.999))}`;
      const r = svg("rect", { x, y, width: cell, height: cell, rx: 2, class: cls + (d.errors ? " cal-err" : "") });
      const title = svg("title");
      title.textContent = d.count === null ? `${d.date}: still counting…`
        : `${d.date}: ${d.count.toLocaleString()} records, ${d.errors.toLocaleString()} errors`;
      r.appendChild(title);
      r.addEventListener("click", () => {
        const next = new URLSearchParams(base.search);
        next.set("since", `${d.date}T00:00:00Z`);
        next.set("until", new Date(date.getTime() + 86400000).toISOString());
        location.href = `${base.pathname}?${next.toString()}`;
      });
      root.appendChild(r);
    });
    fig.querySelector(".plot").replaceChildren(root);
    fig.querySelector("figcaption").textContent = "Daily volume (UTC days; red edge: errors)" +
      (data.complete ? "" : " · filling…");
  }

  async function initCalendar(fig, attempt = 0) {
    try {
      const data = await getJSON(fig.dataset.src);
      drawCalendar(fig, data);
      if (!data.complete && attempt < 300) setTimeout(() => initCalendar(fig, attempt + 1), 1000);
    } catch (e) {
      fig.querySelector(".plot").replaceChildren(el("span", { class: "error" }, `calendar: ${e.message}`));
    }
  }

  // The live tail (tail.js) builds its rows with these.
  window.opslog = { el, localizeTimes, highlighted, getJSON };

  document.addEventListener("DOMContentLoaded", () => {
    localizeTimes(document);
    initPickers();
    const fig = document.getElementById("histogram");
    if (fig) initHistogram(fig);
    const cal = document.getElementById("calendar");
    if (cal) initCalendar(cal);
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const who = document.querySelector("header .who");
    if (who && tz) who.prepend(el("span", { class: "tz", title: "times are shown in this time zone; hover a time for UTC" }, tz));
  });
})();
