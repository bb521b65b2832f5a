// opslog query bar (search page): the "q" box's error underline and suggestions, the field
// sidebar's top values and the expanded rows' filter buttons. Everything that adds to q goes
// through addClause(), which quotes values the way the query language reads them
// (common/query/parser.py: TERM and PHRASE). Text from records reaches the page as text only.
"use strict";

(function () {
  const RECORD_FIELDS = ["host", "app", "source", "level", "message"];
  const KEYWORDS = new Set(["AND", "OR", "NOT", "TO"]);
  // A bare TERM: no space, none of : ( ) [ ] { } " \ < >, not starting with - + ! /, no wildcard.
  const BARE = /^[^\s:()[\]{}"\\+\-<>!*?/][^\s:()[\]{}"\\<>*?]*$/;
  const NAME_CHAR = /[\w.@-]/;

  const { el } = window.opslog;  // opslog.js, loaded (deferred) before this script

  // ---- the language: names and values as q spells them --------------------------------------

  function quoteValue(value) {
    if (typeof value === "number" || typeof value === "boolean") {
      const text = String(value);
      return text.startsWith("-") ? `"${text}"` : text;
    }
    const text = String(value);
    if (BARE.test(text) && !KEYWORDS.has(text) && !text.includes("&&") && !text.includes("||")) return text;
    return `"${text.replace(/[\\"]/g, (c) => "\\" + c)}"`;
  }

  function quoteName(name) {
    return [...name].map((c, i) => (NAME_CHAR.test(c) && !(i === 0 && c === "-") ? c : "\\" + c)).join("");
  }

  function unescapeName(name) { // as typed (a leading - or + negates or requires it) -> the field's name
    return name.replace(/^[-+!]+/, "").replace(/\\(.)/g, "$1");
  }

  function clauseFor(field, value, exclude) {
    return `${exclude ? "-" : ""}${quoteName(field)}:${quoteValue(value)}`;
  }

  // `clause` ANDed to `q`: a q with a top-level OR is grouped first, or the clause would bind to its last part.
  function withClause(q, clause) {
    const text = q.trim();
    if (!text) return clause;
    return /(^|[\s)])(OR|\|\|)([\s(]|$)/.test(text) ? `(${text}) ${clause}` : `${text} ${clause}`;
  }

  function filterable(value) {
    return typeof value === "string" || typeof value === "number" || typeof value === "boolean";
  }

  function shown(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    return { status: resp.status, body };
  }

  // ---- the query bar ---------------------------------------------------------------------

  class QueryBar {
    constructor(form, input) {
      this.form = form;
      this.input = input;
      this.box = input.closest(".qbar");
      this.api = form.dataset;
      this.mirror = this.box.querySelector(".qmirror");
      this.list = this.box.querySelector(".qsuggest");
      this.message = document.getElementById("q-error");
      this.names = null;       // field names, once fetched
      this.values = new Map(); // field -> [{value, count}], once fetched
      this.items = [];
      this.active = -1;
      this.checked = input.value; // the last text the API said parses
      this.timer = null;
      this.submitting = false;

      input.addEventListener("input", () => { this.clearError(); this.suggest(); this.checkSoon(); });
      input.addEventListener("keydown", (e) => this.onKey(e));
      input.addEventListener("click", () => this.close());
      input.addEventListener("blur", () => { this.blurTimer = setTimeout(() => this.close(), 150); });
      input.addEventListener("focus", () => clearTimeout(this.blurTimer));
      input.addEventListener("scroll", () => { this.mirror.scrollLeft = input.scrollLeft; });
      form.addEventListener("submit", (e) => this.onSubmit(e));
    }

    // -- errors: the API's 400 {"param": "q", "position"} underlines one character

    showError(error, position) {
      const text = this.input.value;
      const at = Math.max(0, Math.min(position, text.length));
      const mark = el("span", { class: "qerr-at" }, text.slice(at, at + 1) || " ");
      this.mirror.replaceChildren(document.createTextNode(text.slice(0, at)), mark,
        document.createTextNode(text.slice(at + 1)));
      this.mirror.scrollLeft = this.input.scrollLeft;
      this.box.classList.add("has-error");
      this.input.setAttribute("aria-invalid", "true");
      this.message.textContent = `${error} (at character ${at + 1})`;
      this.message.dataset.position = String(at);
      this.message.hidden = false;
    }

    clearError() {
      this.mirror.replaceChildren();
      this.box.classList.remove("has-error");
      this.input.removeAttribute("aria-invalid");
      this.message.hidden = true;
      this.message.textContent = "";
      delete this.message.dataset.position;
    }

    // Asks the API with a one-second window: it parses q and answers 400 before reading anything big.
    async check(text) {
      if (!text.trim()) return null;
      const until = new Date(), since = new Date(until.getTime() - 1000);
      const args = new URLSearchParams({ q: text, since: since.toISOString(), until: until.toISOString(), limit: "1" });
      const { status, body } = await getJSON(`${this.api.logs}?${args}`);
      if (status === 400 && body && body.param === "q") return body;
      return null;
    }

    checkSoon() {
      clearTimeout(this.timer);
      this.timer = setTimeout(async () => {
        const text = this.input.value;
        const problem = await this.check(text);
        if (this.input.value !== text) return; // typed on meanwhile
        if (problem) this.showError(problem.error, problem.position ?? text.length);
        else this.checked = text;
      }, 400);
    }

    async onSubmit(e) {
      if (this.submitting) return;
      if (this.input.value !== this.input.value.trim()) this.input.value = this.input.value.trim();
      const text = this.input.value;
      if (text === this.checked || !text.trim()) return;
      e.preventDefault();
      const problem = await this.check(text);
      if (problem) {
        this.showError(problem.error, problem.position ?? text.length);
        this.input.focus();
        return;
      }
      this.checked = text;
      this.submitting = true;
      this.form.submit();
    }

    // Adds `field:value` (or `-field:value`) to q and runs the search.
    addClause(field, value, exclude) {
      this.input.value = withClause(this.input.value, clauseFor(field, value, exclude));
      this.close();
      this.clearError();
      this.form.requestSubmit();
    }

    // -- suggestions: field names, then a field's common values

    // What the caret is in: a field name being typed, or a value after `field:` (also inside an open
    // "phrase" and inside a field group `field:(a OR b`); null where nothing fits (a range, a regex).
    context() {
      const text = this.input.value, caret = this.input.selectionStart ?? text.length;
      const before = text.slice(0, caret);
      const open = /(?:^|[\s(])([-+!]?)((?:[\w.@-]|\\.)+):"((?:[^"\\]|\\.)*)$/.exec(before);
      if (open && (before.slice(0, open.index).match(/(^|[^\\])"/g) || []).length % 2 === 0) {
        let end = caret;
        while (end < text.length && text[end] !== '"') end++;
        return { kind: "value", field: unescapeName(open[2]), prefix: open[3], start: caret - open[3].length - 1,
          end: Math.min(text.length, end + 1) };
      }
      if ((before.match(/(^|[^\\])"/g) || []).length % 2 === 1) return null; // inside a bare "phrase"
      let start = caret;
      while (start > 0 && !/[\s()]/.test(text[start - 1])) start--;
      let end = caret;
      while (end < text.length && !/[\s()]/.test(text[end])) end++;
      let token = text.slice(start, caret);
      const sign = /^(-|\+|!)/.exec(token);
      if (sign) { start += 1; token = token.slice(1); }
      const colon = token.indexOf(":");
      if (colon < 0) {
        if (!/^[\w.@-]*$/.test(token) || KEYWORDS.has(token)) return null;
        const group = /((?:[\w.@-]|\\.)+):\((?:[^()]*[\s(])?$/.exec(text.slice(0, start));
        if (group) return { kind: "value", field: unescapeName(group[1]), prefix: token, start, end };
        return { kind: "name", prefix: token, start, end };
      }
      const field = unescapeName(token.slice(0, colon));
      const prefix = token.slice(colon + 1);
      if (/^[[{/<>(]/.test(prefix) || !field || field === "_exists_") return null;
      return { kind: "value", field, prefix, start: start + colon + 1, end };
    }

    loadNames() {
      if (!this.names) this.names = this.fetchNames();
      return this.names;
    }

    async fetchNames() {
      const names = new Set(RECORD_FIELDS);
      document.querySelectorAll("#fieldbar [data-field]").forEach((b) => names.add(b.dataset.field));
      try {
        const { status, body } = await getJSON(this.api.fields);
        const listed = status === 200 && body ? (body.fields || []) : [];
        for (const f of listed) {
          const name = typeof f === "string" ? f : (f.field || f.name);
          // The catalogue lists paths below `fields`: one named like a record field needs the prefix.
          if (name) names.add(name.startsWith("fields.") || RECORD_FIELDS.includes(name) ? `fields.${name}` : name);
        }
      } catch (e) { /* the catalogue is a help, not a need */ }
      return [...names];
    }

    loadValues(field) {
      if (!this.values.has(field)) {
        const url = `${this.api.top.replace("__FIELD__", encodeURIComponent(field))}?${this.api.window}&limit=10`;
        this.values.set(field, getJSON(url).then(({ status, body }) =>
          (status === 200 && body ? body.values.filter((v) => filterable(v.value)) : [])));
      }
      return this.values.get(field);
    }

    async suggest(openEmpty = false) {
      const ctx = this.context();
      if (!ctx || (ctx.kind === "name" && !ctx.prefix && !openEmpty)) return this.close();
      const text = this.input.value;
      let items;
      if (ctx.kind === "name") {
        const p = ctx.prefix.toLowerCase();
        const names = await this.loadNames();
        const starts = names.filter((n) => n.toLowerCase().startsWith(p));
        const inside = names.filter((n) => !n.toLowerCase().startsWith(p) && n.toLowerCase().includes(p));
        items = [...starts.sort(), ...inside.sort()].slice(0, 12)
          .map((n) => ({ label: n, hint: RECORD_FIELDS.includes(n) ? "record" : "field", insert: `${quoteName(n)}:`, then: true }));
      } else {
        const p = ctx.prefix.toLowerCase();
        const values = await this.loadValues(ctx.field);
        items = values.filter((v) => shown(v.value).toLowerCase().startsWith(p))
          .map((v) => ({ label: shown(v.value), hint: v.count.toLocaleString(), insert: `${quoteValue(v.value)} ` }));
      }
      if (this.input.value !== text) return; // typed on meanwhile: that input suggests anew
      if (items.length === 1 && items[0].label === (ctx.prefix || "\0") && ctx.kind === "value") items = [];
      this.show(items, ctx);
    }

    show(items, ctx) {
      this.items = items;
      this.ctx = ctx;
      this.active = -1;
      this.list.replaceChildren(...items.map((item, i) => {
        const li = el("li", { role: "option", id: `q-opt-${i}`, "aria-selected": "false" });
        li.append(el("span", { class: "label" }, item.label), el("span", { class: "hint" }, item.hint));
        li.addEventListener("mousedown", (e) => { e.preventDefault(); this.accept(i); });
        return li;
      }));
      this.list.hidden = !items.length;
      this.input.setAttribute("aria-expanded", items.length ? "true" : "false");
      this.input.removeAttribute("aria-activedescendant");
    }

    close() {
      this.items = [];
      this.list.hidden = true;
      this.list.replaceChildren();
      this.input.setAttribute("aria-expanded", "false");
      this.input.removeAttribute("aria-activedescendant");
    }

    move(step) {
      if (!this.items.length) return;
      this.active = (this.active + step + this.items.length) % this.items.length;
      [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", i === this.active ? "true" : "false"));
      this.input.setAttribute("aria-activedescendant", `q-opt-${this.active}`);
      this.list.children[this.active].scrollIntoView({ block: "nearest" });
    }

    accept(i) {
      const item = this.items[i], ctx = this.ctx;
      if (!item) return;
      const text = this.input.value;
      this.input.value = text.slice(0, ctx.start) + item.insert + text.slice(ctx.end);
      const caret = ctx.start + item.insert.length;
      this.input.setSelectionRange(caret, caret);
      this.close();
      this.clearError();
      if (item.then) this.suggest();
      else this.checkSoon();
    }

    onKey(e) {
      const open = this.items.length > 0;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (open) this.move(e.key === "ArrowDown" ? 1 : -1);
        else this.suggest(true);
      } else if ((e.key === "Enter" || e.key === "Tab") && open && (this.active >= 0 || e.key === "Tab")) {
        e.preventDefault();
        this.accept(Math.max(this.active, 0));
      } else if (e.key === "Escape" && open) {
        e.preventDefault(); // a search box would clear itself
        this.close();
      } else if (e.key === "Enter") {
        this.close();
      }
    }
  }

  // ---- the field sidebar: a field's top values in the current result -------------------------

  function initSidebar(bar, query) {
    const topApi = bar.dataset.top, args = bar.dataset.args;
    bar.addEventListener("click", async (e) => {
      const button = e.target.closest("button.fname");
      if (!button) return;
      const item = button.closest("li");
      const open = button.getAttribute("aria-expanded") === "true";
      item.querySelector(".topvals")?.remove();
      button.setAttribute("aria-expanded", open ? "false" : "true");
      if (open) return;
      const panel = el("div", { class: "topvals" });
      panel.append(el("p", { class: "muted" }, "counting…"));
      item.append(panel);
      const field = button.dataset.field;
      const { status, body } = await getJSON(
        `${topApi.replace("__FIELD__", encodeURIComponent(field))}?${args}&limit=10`);
      if (status !== 200 || !body) {
        panel.replaceChildren(el("p", { class: "error" }, (body && body.error) || `HTTP ${status}`));
        return;
      }
      const rows = body.values.map((v) => {
        const li = el("li", { class: "topval" });
        const label = el("span", { class: "v", title: shown(v.value) }, shown(v.value));
        const share = body.scanned ? v.count / body.scanned : 0;
        const meter = el("span", { class: "share", title: `${(share * 100).toFixed(1)} %` });
        const fill = el("span");
        fill.style.width = `${Math.max(1, Math.round(share * 100))}%`;
        meter.append(fill);
        li.append(label, el("span", { class: "n" }, v.count.toLocaleString()), meter);
        if (filterable(v.value)) {
          const plus = el("button", { type: "button", class: "fv-add", title: `filter for ${field}: ${shown(v.value)}` }, "+");
          const minus = el("button", { type: "button", class: "fv-not", title: `filter out ${field}: ${shown(v.value)}` }, "−");
          plus.addEventListener("click", () => query.addClause(field, v.value, false));
          minus.addEventListener("click", () => query.addClause(field, v.value, true));
          li.append(plus, minus);
        }
        return li;
      });
      const list = el("ul", { class: "plain" });
      list.append(...rows);
      const note = body.values.length
        ? `${body.complete ? "in" : "in a sample of the newest"} ${body.scanned.toLocaleString()} records` +
          (body.complete ? "" : " (scan budget spent)")
        : `no value in ${body.scanned.toLocaleString()} records`;
      panel.replaceChildren(list, el("p", { class: "muted note" }, note));
    });
  }

  // ---- expanded rows: every field filters for or against its value ---------------------------

  function initRows(table, query) {
    document.addEventListener("toggle", (e) => {
      const details = e.target;
      if (!(details instanceof HTMLDetailsElement) || !details.open || !table.contains(details)) return;
      details.querySelectorAll("dd[data-field]:not(.armed)").forEach((dd) => {
        dd.classList.add("armed");
        let value;
        try { value = JSON.parse(dd.dataset.value); } catch (err) { return; }
        if (!filterable(value)) return;
        const field = dd.dataset.field;
        const plus = el("button", { type: "button", class: "fv-add", title: `filter for ${field}: ${shown(value)}` }, "+");
        const minus = el("button", { type: "button", class: "fv-not", title: `filter out ${field}: ${shown(value)}` }, "−");
        plus.addEventListener("click", () => query.addClause(field, value, false));
        minus.addEventListener("click", () => query.addClause(field, value, true));
        const acts = el("span", { class: "fv-acts" });
        acts.append(plus, minus);
        dd.prepend(acts);
      });
    }, true);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const input = document.querySelector("#search-form .qbar input[name=q]");
    if (!input) return;
    const query = new QueryBar(document.getElementById("search-form"), input);
    const pageError = document.getElementById("page-error");
    if (pageError && pageError.dataset.param === "q" && pageError.dataset.position !== undefined) {
      query.showError(pageError.dataset.error, Number(pageError.dataset.position));
      query.checked = null; // the page's own q is the bad one: Enter asks again
    }
    const bar = document.getElementById("fieldbar");
    if (bar) initSidebar(bar, query);
    const table = document.getElementById("results");
    if (table) initRows(table, query);
  });
})();
