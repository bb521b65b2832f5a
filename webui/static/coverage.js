// opslog host page: per-file coverage bars (stored, gap, in flight), lag and silence, and the
// verify button that recomputes coverage from the stored records. Clicking a gap opens the
// context view at its edge. File names and ids only ever reach the page as text.
"use strict";

(function () {
  const { el, getJSON } = window.opslog;  // opslog.js, loaded (deferred) before this script

  const bytes = (n) => (n === null || n === undefined) ? "?" : n < 1024 ? `${n} B`
    : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
  const entries = (n) => (n === null || n === undefined) ? "?" : `${n.toLocaleString()} entries`;
  // A journald input's coverage counts seqnums (journal entries), a file's bytes.
  const amountOf = (f) => f.file.startsWith("journal:") ? entries : bytes;

  function contextHref(root, id) {
    return root.dataset.context.replace("__id__", encodeURIComponent(id)) + "?before=10&after=10";
  }

  // One segment of the bar, from `start` to `end` bytes, scaled to `total`; at least a few pixels wide.
  function segment(cls, start, end, total, title) {
    const seg = el("span", { class: `seg ${cls}`, title });
    seg.style.left = `${(100 * start) / total}%`;
    seg.style.width = `calc(${(100 * (end - start)) / total}% + 0px)`;
    seg.style.minWidth = cls === "stored" ? "0" : "3px";
    return seg;
  }

  function fileRow(root, f) {
    const row = el("div", { class: "file", "data-file": f.file });
    const head = el("div", { class: "file-head" });
    head.appendChild(el("span", { class: "mono name" }, f.source || f.file));
    if (f.names.length > 1) head.appendChild(el("span", { class: "muted" }, ` (also ${f.names.slice(1).join(", ")})`));
    if (f.silent) head.appendChild(el("span", { class: "badge stale silent" }, "silent"));
    if (f.gaps.length) head.appendChild(el("span", { class: "badge gap-badge" }, `${f.gaps.length} gap${f.gaps.length > 1 ? "s" : ""}`));
    row.appendChild(head);

    const amount = amountOf(f);
    const total = Math.max(1, f.size || 0, f.stored_end || 0, ...f.gaps.map((g) => g[1]));
    const bar = el("div", { class: "bar", role: "img",
      "aria-label": `stored ${amount(f.stored_bytes)} of ${amount(f.size)}` });
    if (f.expired_through) bar.appendChild(segment("expired", 0, f.expired_through, total, `removed by the retention up to ${f.expired_through}`));
    // stored: everything from the first stored byte to the last, gaps are drawn over it
    if (f.first_offset !== null) bar.appendChild(segment("stored", f.first_offset, f.stored_end, total, `stored ${f.first_offset}..${f.stored_end}`));
    if (f.in_flight) bar.appendChild(segment("flight", f.in_flight[0], f.in_flight[1], total, `in flight: ${amount(f.lag_bytes)} not stored yet`));
    f.gaps.forEach((g, i) => {
      const seg = segment("gap", g[0], g[1], total, `gap [${g[0]}, ${g[1]}): ${f.gap_causes[i]}`);
      const edges = (f.gap_edges || [])[i] || [];
      const target = edges[0] || edges[1];
      if (target) {
        seg.classList.add("link");
        seg.addEventListener("click", () => { location.href = contextHref(root, target); });
      }
      bar.appendChild(seg);
    });
    row.appendChild(bar);

    const facts = el("div", { class: "facts muted" });
    const lag = f.lag_bytes ? `lag ${amount(f.lag_bytes)}, ${f.lag_seconds}s` : (f.lag_seconds ? `no word for ${f.lag_seconds}s` : "no lag");
    facts.textContent = `${amount(f.stored_bytes)} stored of ${amount(f.size)} · ${lag}` +
      (f.records !== undefined ? ` · ${f.records.toLocaleString()} records verified` : "");
    row.appendChild(facts);
    if (f.gaps.length) {
      const list = el("ul", { class: "gaps plain mono" });
      f.gaps.forEach((g, i) => {
        const item = el("li", {}, `[${g[0]}, ${g[1]}) ${f.gap_causes[i]} `);
        const edges = (f.gap_edges || [])[i] || [];
        if (edges[0]) item.appendChild(el("a", { href: contextHref(root, edges[0]) }, "before"));
        if (edges[0] && edges[1]) item.appendChild(document.createTextNode(" "));
        if (edges[1]) item.appendChild(el("a", { href: contextHref(root, edges[1]) }, "after"));
        list.appendChild(item);
      });
      row.appendChild(list);
    }
    return row;
  }

  function draw(root, data, verified) {
    const list = root.querySelector(".files");
    list.replaceChildren(...data.files.map((f) => fileRow(root, f)));
    if (!data.files.length) list.appendChild(el("p", { class: "muted" }, "no file coverage yet (shippers older than coverage send none)"));
    const status = root.querySelector(".verify-status");
    if (verified) {
      const holed = data.files.filter((f) => f.gaps.length).length;
      status.textContent = holed ? `verified from the stored records: ${holed} file(s) with gaps`
        : `verified from the stored records: ${data.files.length} file(s), no gap`;
      status.className = `verify-status ${holed ? "error" : "ok"}`;
    }
  }

  async function load(root) {
    if (root.dataset.verified) return; // a verified view stays until the page is reloaded
    try {
      draw(root, await getJSON(root.dataset.src), false);
    } catch (e) {
      root.querySelector(".files").replaceChildren(el("span", { class: "error" }, `coverage: ${e.message}`));
    }
  }

  function init(root) {
    load(root);
    setInterval(() => load(root), 5000);
    const button = root.querySelector("button.verify");
    button.addEventListener("click", async () => {
      button.disabled = true;
      root.querySelector(".verify-status").textContent = "verifying…";
      try {
        root.dataset.verified = "1";
        draw(root, await getJSON(root.dataset.verify), true);
      } catch (e) {
        root.querySelector(".verify-status").textContent = `verify: ${e.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("coverage");
    if (root) init(root);
  });
})();
