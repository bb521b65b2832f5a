// Saved searches (/api/searches) and this browser's query history (localStorage, per user) on the
// search page. Names and queries reach the page through textContent only: never as HTML.
"use strict";

(function () {
  const HISTORY_MAX = 50;
  const SEARCH_KEYS = ["q", "host", "app", "source", "level", "since", "until"];
  const RELATIVE = /^[0-9]+(\.[0-9]+)?[smhdw]$/;
  // the search table's columns a user may hide, by the class their cells carry; message always shows
  const HIDEABLE = { time: "t", level: "l", host: "h", app: "a" };
  const ALL_COLUMNS = ["time", "level", "host", "app", "source", "message"];
  const DEFAULT_COLUMNS = ["time", "level", "host", "app", "message"];

  const { el } = window.opslog;  // opslog.js, loaded (deferred) before this script

  function describe(query) {
    const p = new URLSearchParams(query);
    const parts = [];
    if (p.get("q")) parts.push(`"${p.get("q")}"`);
    for (const key of ["host", "app", "source"]) if (p.get(key)) parts.push(`${key}:${p.get(key)}`);
    const levels = p.getAll("level");
    if (levels.length) parts.push(`level:${levels.join(",")}`);
    if (p.get("since")) parts.push(`since ${p.get("since")}`);
    if (p.get("until")) parts.push(`until ${p.get("until")}`);
    return parts.join(" ") || "everything";
  }

  // ---- columns: ?columns=time,host,message hides the others -----------------------------------
  function shownColumns() {
    const asked = new URLSearchParams(location.search).get("columns");
    if (!asked) return DEFAULT_COLUMNS.slice();
    const cols = asked.split(",").filter((c) => ALL_COLUMNS.includes(c));
    return cols.includes("message") ? cols : cols.concat("message");
  }

  function withColumns(href, cols) {
    const url = new URL(href, location.href);
    if (cols.join(",") === DEFAULT_COLUMNS.join(",")) url.searchParams.delete("columns");
    else url.searchParams.set("columns", cols.join(","));
    return url.pathname + url.search + url.hash;
  }

  function applyColumns(cols) {
    const table = document.getElementById("results");
    if (table) for (const [name, cls] of Object.entries(HIDEABLE)) table.classList.toggle(`hide-${cls}`, !cols.includes(name));
    for (const box of document.querySelectorAll("#columns input[name=column]")) box.checked = cols.includes(box.value);
    for (const link of document.querySelectorAll("#older, #permalink")) link.setAttribute("href", withColumns(link.getAttribute("href"), cols));
  }

  function initColumns() {
    applyColumns(shownColumns());
    for (const box of document.querySelectorAll("#columns input[name=column]")) {
      box.addEventListener("change", () => {
        const picked = [...document.querySelectorAll("#columns input[name=column]:checked")].map((b) => b.value);
        const cols = ALL_COLUMNS.filter((c) => picked.includes(c) || c === "message");
        history.replaceState(null, "", withColumns(location.href, cols));
        applyColumns(cols);
      });
    }
  }

  // ---- history: the last 50 searches of this user, newest first ------------------------------
  function historyOf(key) {
    try {
      const list = JSON.parse(localStorage.getItem(key) || "[]");
      return Array.isArray(list) ? list.filter((e) => e && typeof e.query === "string") : [];
    } catch (e) {
      return [];
    }
  }

  function keepHistory(key, list) {
    try {
      localStorage.setItem(key, JSON.stringify(list.slice(0, HISTORY_MAX)));
    } catch (e) { /* storage full or disabled: history is a convenience */ }
  }

  function thisSearch() {
    const kept = new URLSearchParams();
    for (const [k, v] of new URLSearchParams(location.search)) if (SEARCH_KEYS.includes(k) && v) kept.append(k, v);
    return kept.toString();
  }

  function drawHistory(box, key, searchUrl) {
    const list = historyOf(key);
    const ol = box.querySelector(".history-list");
    ol.replaceChildren();
    for (const entry of list) {
      const li = el("li");
      li.appendChild(el("a", { href: `${searchUrl}?${entry.query}`, class: "history-link" }, describe(entry.query)));
      const at = new Date(entry.at);
      if (!isNaN(at)) li.appendChild(el("span", { class: "when" }, at.toLocaleString()));
      ol.appendChild(li);
    }
    if (!list.length) ol.appendChild(el("li", { class: "muted" }, "no searches yet"));
    box.querySelector(".count").textContent = list.length ? `(${list.length})` : "";
  }

  function initHistory(section, searchUrl) {
    const box = document.getElementById("history");
    const key = `opslog.history.${section.dataset.user || "anonymous"}`;
    const query = thisSearch();
    if (query && !document.querySelector("p.error[role=alert]")) {
      const list = historyOf(key).filter((e) => e.query !== query);
      list.unshift({ query, at: new Date().toISOString() });
      keepHistory(key, list);
    }
    drawHistory(box, key, searchUrl);
    document.getElementById("history-clear").addEventListener("click", () => {
      keepHistory(key, []);
      drawHistory(box, key, searchUrl);
    });
  }

  // ---- saved searches ------------------------------------------------------------------------
  function initSaved(section) {
    const apiUrl = section.dataset.api;
    const status = section.querySelector(".saved-status");
    const list = section.querySelector(".saved-list");
    const box = document.getElementById("saved");

    function say(text, isError = false) {
      status.textContent = text;
      status.classList.toggle("error", isError);
    }

    async function call(method, url, body) {
      const resp = await fetch(url, {
        method, credentials: "same-origin",
        headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRF-Token": section.dataset.csrf },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (resp.status === 204) return null;
      let data = null;
      try { data = await resp.json(); } catch (e) { /* not JSON */ }
      if (resp.status === 401) throw new Error("signed out: reload the page to sign in again");
      if (!resp.ok) {
        const what = data && data.error ? data.error : `HTTP ${resp.status}`;
        throw new Error(data && data.param ? `${data.param}: ${what}` : what);
      }
      return data;
    }

    function startRename(li, search) {
      const input = el("input", { value: search.name, maxlength: "100", "aria-label": "new name", class: "rename-input" });
      const ok = el("button", { type: "button", class: "rename-ok" }, "ok");
      const cancel = el("button", { type: "button" }, "cancel");
      li.replaceChildren(input, ok, cancel);
      input.focus();
      input.select();
      const done = async () => {
        try {
          await call("PUT", `${apiUrl}/${encodeURIComponent(search.id)}`, { name: input.value });
          say(`renamed to “${input.value.trim()}”`);
          await refresh();
        } catch (err) {
          say(`could not rename: ${err.message}`, true);
        }
      };
      ok.addEventListener("click", done);
      input.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") { ev.preventDefault(); done(); }
        if (ev.key === "Escape") refresh();
      });
      cancel.addEventListener("click", () => refresh());
    }

    function item(search, me) {
      const li = el("li", { "data-id": search.id });
      li.appendChild(el("a", { href: search.permalink, class: "saved-link", title: describe(search.url.split("?")[1] || "") },
                        search.name));
      if (search.shared) li.appendChild(el("span", { class: "badge" }, "shared"));
      if (search.owner !== me) li.appendChild(el("span", { class: "owner" }, `by ${search.owner}`));
      if (search.editable) {
        const rename = el("button", { type: "button", class: "rename" }, "rename");
        rename.addEventListener("click", () => startRename(li, search));
        const del = el("button", { type: "button", class: "delete" }, "delete");
        del.addEventListener("click", async () => {
          try {
            await call("DELETE", `${apiUrl}/${encodeURIComponent(search.id)}`);
            say(`deleted “${search.name}”`);
            await refresh();
          } catch (err) {
            say(`could not delete: ${err.message}`, true);
          }
        });
        li.append(rename, del);
      }
      return li;
    }

    async function refresh() {
      try {
        const data = await call("GET", apiUrl);
        list.replaceChildren(...data.searches.map((s) => item(s, section.dataset.user)));
        if (!data.searches.length) list.appendChild(el("li", { class: "muted" }, "none saved yet"));
        box.querySelector(".count").textContent = data.searches.length ? `(${data.searches.length})` : "";
      } catch (err) {
        list.replaceChildren(el("li", { class: "error" }, `could not load: ${err.message}`));
      }
    }

    const form = document.getElementById("save-search");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const search = document.getElementById("search-form");
        const value = (name) => (search.elements[name] ? search.elements[name].value.trim() : "");
        const since = value("since");
        const body = {
          name: form.elements.save_name.value,
          shared: form.elements.save_shared.checked,
          q: value("q"),
          filters: {
            host: value("host") || null, app: value("app") || null, source: value("source") || null,
            level: [...search.querySelectorAll("input[name=level]:checked")].map((c) => c.value),
          },
          since: RELATIVE.test(since) ? since : null,
          columns: shownColumns(),
        };
        try {
          const saved = await call("POST", apiUrl, body);
          say(`saved as “${saved.name}”` + (since && !RELATIVE.test(since)
            ? " (a fixed From time is not kept: it runs over the default window)" : ""));
          form.reset();
          box.open = true;
          await refresh();
        } catch (err) {
          say(`could not save: ${err.message}`, true);
        }
      });
    }
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const section = document.getElementById("saved-searches");
    if (!section) return;
    const searchUrl = document.getElementById("search-form").getAttribute("action");
    initColumns();
    initHistory(section, searchUrl);
    initSaved(section);
  });
})();
