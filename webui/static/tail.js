// opslog live tail: follows GET /api/tail (arrival order) as Server-Sent Events, never skipping silently.
//
// Lines arrive as `records` events whose id is the cursor after them. When they come faster than a
// person can read (MAX_SHOWN_PER_SECOND), the page shows 1 in N and says how many it did not show;
// it remembers the cursor before the first line it left out. Pause closes the stream and keeps a
// cursor (that one, else the last), never the lines; resume reads from it through the JSON form of
// the same URL, page by page at a readable pace, every line shown, then follows the stream again.
// Log text only ever reaches the page through textContent / text nodes.
"use strict";

(function () {
  const MAX_SHOWN_PER_SECOND = 1000;
  const ROWS_KEPT = 2000;
  const PAGE = 1000;
  const TICK_MS = 100;
  const BUCKET = MAX_SHOWN_PER_SECOND / 2; // lines shown at once after a quiet spell

  function initTail(table) {
    const { el, localizeTimes, highlighted, getJSON } = window.opslog;
    const body = table.querySelector("tbody");
    const state = document.getElementById("tail-state"), count = document.getElementById("tail-count");
    const toggle = document.getElementById("tail-toggle"), notice = document.getElementById("tail-sampling");
    const api = table.dataset.api, q = table.dataset.q, contextHref = table.dataset.context;
    // a cursor in the page's URL (a link to "from here on") is checked by the API like any other
    let source = null, cursor = table.dataset.cursor || null, received = 0, paused = false, catchingUp = false, run = 0;
    let eventNo = 0, waiting = [], tokens = BUCKET, lastTick = performance.now();
    let every = 1, seen = 0, notShown = 0;    // sampling: show 1 in `every`; lines skipped so far
    let lastEvery = 1;                         // the latest sampling rate, for the notice
    let gapCursor = null, gapEvent = null;     // where the first line not shown was

    function say(text, cls) {
      state.textContent = text;
      state.className = `state ${cls}`;
    }

    function url(extra) {
      const u = new URL(api, location.href);
      for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) u.searchParams.set(k, v);
      return u.pathname + u.search;
    }

    function row(rec, ev) {
      const tr = el("tr", { class: `rec lvrow-${rec.level || "none"}`, "data-id": rec.id, "data-ev": ev });
      const tdTime = el("td", { class: "t" });
      tdTime.appendChild(el("time", { datetime: rec.ts }));
      const tdLevel = el("td", { class: "l" });
      tdLevel.appendChild(el("span", { class: `lv lv-${rec.level || "none"}` }, rec.level || "—"));
      const tdMsg = el("td", { class: "m" });
      const msg = el("div", { class: "msg" });
      msg.appendChild(highlighted(rec.message, q));
      tdMsg.append(el("a", { href: contextHref.replace("__ID__", encodeURIComponent(rec.id)) + `#r-${rec.id}`,
        class: "ctx" }, "context"), msg);
      tr.append(tdTime, tdLevel, el("td", { class: "h", title: rec.host }, rec.host),
        el("td", { class: "a", title: rec.app }, rec.app), tdMsg);
      return tr;
    }

    // Whether to keep the newest line in view: decided when the user scrolls, so that showing lines
    // never has to measure the page first (a layout of thousands of rows, ten times a second).
    let atBottom = true;
    window.addEventListener("scroll", () => {
      atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    }, { passive: true });

    function show(records, ev) {
      if (!records.length) return;
      const frag = document.createDocumentFragment();
      for (const rec of records) frag.appendChild(row(rec, ev));
      localizeTimes(frag);
      body.appendChild(frag);
      const extra = body.rows.length - ROWS_KEPT;
      for (let i = 0; i < extra; i++) body.deleteRow(0);
      count.textContent = body.rows.length;
      if (atBottom) window.scrollTo(0, document.body.scrollHeight);
    }

    function updateNotice() {
      if (notShown) {
        notice.hidden = false;
        notice.textContent = `showing 1 in ${lastEvery}, ${notShown.toLocaleString()} lines not shown; pause to catch up`;
      } else {
        notice.hidden = true;
        notice.textContent = "";
      }
    }

    // Records wait here between the stream and the screen. Every TICK_MS what waits is shown, as
    // far as a token bucket (MAX_SHOWN_PER_SECOND, BUCKET at once after a quiet spell) allows; beyond it 1
    // in N is shown and the rest counted: arrival faster than the page can show, measured as
    // such, whether the stream is fast or this browser slow.
    function onRecords(e) {
      const before = cursor;
      cursor = e.lastEventId || cursor;
      const records = JSON.parse(e.data).records;
      received += records.length;
      table.dataset.received = received; // for the bench: lines that reached the page
      waiting.push({ records, ev: ++eventNo, before });
    }

    function tick() {
      const now = performance.now();
      tokens = Math.min(BUCKET, tokens + ((now - lastTick) / 1000) * MAX_SHOWN_PER_SECOND);
      lastTick = now;
      if (!waiting.length) return;
      const total = waiting.reduce((s, w) => s + w.records.length, 0);
      every = total <= tokens ? 1 : Math.max(2, Math.ceil(total / Math.max(1, Math.floor(tokens))));
      if (every > 1) lastEvery = every;
      for (const { records, ev, before } of waiting) {
        let shown = records;
        if (every > 1) {
          shown = records.filter(() => (seen++ % every) === 0);
          if (shown.length < records.length && gapCursor === null) {
            gapCursor = before;
            gapEvent = ev;
          }
          notShown += records.length - shown.length;
        }
        tokens -= shown.length;
        show(shown, ev);
      }
      waiting = [];
      updateNotice();
    }

    function follow() {
      // A cursor in the URL for a fresh stream; the browser's own reconnects send Last-Event-ID.
      source = new EventSource(url({ cursor }));
      source.addEventListener("cursor", (e) => { cursor = e.lastEventId || cursor; say("following", "live"); });
      source.addEventListener("records", onRecords);
      source.addEventListener("open", () => say("following", "live"));
      source.addEventListener("error", () => {
        if (paused || !source) return;
        if (source.readyState === EventSource.CLOSED) {
          // Refused (503: too many streams; 400: a cursor this database does not know): try again later.
          source = null;
          say("disconnected, retrying…", "error");
          setTimeout(() => { if (!paused && !source && !catchingUp) restart(); }, 5000);
        } else {
          say("reconnecting…", "error");
        }
      });
    }

    async function restart() {
      try {
        if (cursor !== null) await getJSON(url({ cursor, limit: 1 }));
      } catch (e) {
        cursor = null; // not a cursor of this database any more: start again at the end
      }
      follow();
    }

    function stop() {
      if (source) source.close();
      source = null;
    }

    async function catchUp() {
      const mine = ++run; // a pause and a resume during an await start a new run: this one ends
      catchingUp = true;
      try {
        while (!paused && mine === run) {
          const started = performance.now();
          const data = await getJSON(url({ cursor, limit: PAGE }));
          if (paused || mine !== run) return; // read again from the same cursor on the next resume
          cursor = data.next_cursor;
          show(data.records, ++eventNo);
          if (data.caught_up) break;
          say(`catching up… ${data.records.length ? "" : "(scanning)"}`, "paused");
          const readable = (data.records.length / MAX_SHOWN_PER_SECOND) * 1000;
          await new Promise((r) => setTimeout(r, Math.max(0, readable - (performance.now() - started))));
        }
        if (!paused && mine === run) follow();
      } catch (e) {
        if (mine !== run) return;
        say(`catch-up failed: ${e.message}; resume to try again`, "error");
        paused = true;
        toggle.textContent = "Resume";
      } finally {
        if (mine === run) catchingUp = false;
      }
    }

    toggle.addEventListener("click", () => {
      paused = !paused;
      toggle.textContent = paused ? "Resume" : "Pause";
      if (paused) {
        stop();
        if (gapCursor === null && waiting.length) { // received, never shown: read again on resume
          gapCursor = waiting[0].before;
          gapEvent = waiting[0].ev;
        }
        waiting = [];
        if (gapCursor !== null) cursor = gapCursor; // resume from the first line not shown
        say("paused", "paused");
        return;
      }
      if (gapEvent !== null) {
        // The lines from the gap on come again, every one: drop the sampled ones shown from there.
        for (const tr of Array.from(body.rows)) if (Number(tr.dataset.ev) >= gapEvent) tr.remove();
      }
      gapCursor = gapEvent = null;
      notShown = 0;
      every = lastEvery = 1;
      updateNotice();
      say("catching up…", "paused");
      catchUp();
    });
    document.getElementById("tail-clear").addEventListener("click", () => {
      body.replaceChildren();
      count.textContent = "0";
    });
    document.getElementById("tail-cap").textContent = ROWS_KEPT;
    setInterval(tick, TICK_MS);
    follow();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("tail");
    if (table) initTail(table);
  });
})();
