// reasonseg-x case viewer: worst-first list, filters, search, deep links, keyboard, two runs side by side.
// Everything from the data (ids, queries, answers) is untrusted: it only ever reaches textContent or
// an attribute set with setAttribute; image paths are built from hex keys the builder made.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("viewer-data").textContent);
  var CASES = DATA.cases || [];
  var RUNS = DATA.runs || [];
  var PAIR = RUNS.length > 1;
  var PAGE = 60;
  var TYPES = {};
  (DATA.types || []).forEach(function (t) { TYPES[t.id] = t; });
  var BY_ID = {};
  CASES.forEach(function (c, i) { BY_ID[c.id] = i; });
  var state = { type: "", kind: "", status: "", min: 0, max: 100, change: "", q: "",
                sort: PAIR ? "loss" : "worst", page: 0, sel: 0 };
  var visible = [];
  var openIndex = -1;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function pct(v) { return typeof v === "number" ? (100 * v).toFixed(1) : "\u2014"; }
  function fmt(v) { return typeof v === "number" ? v.toFixed(1) : "\u2014"; }
  function iou(c, r) { var v = c.runs[r] ? c.runs[r].iou : null; return typeof v === "number" ? v : 0; }
  function diff(c) { return iou(c, 1) - iou(c, 0); }
  function typeCode(c) { return c.type ? (TYPES[c.type] ? TYPES[c.type].code : c.type) : "\u2014"; }
  var FAILED = { parse_error: 1, error: 1, missing: 1, invalid: 1 };

  function compare(a, b) {
    var ca = CASES[a], cb = CASES[b], d = 0;
    if (state.sort === "worst") {
      d = iou(ca, 0) - iou(cb, 0) || (FAILED[cb.runs[0].status] || 0) - (FAILED[ca.runs[0].status] || 0);
    } else if (state.sort === "worst-b") {
      d = iou(ca, 1) - iou(cb, 1);
    } else if (state.sort === "best") {
      d = iou(cb, 0) - iou(ca, 0);
    } else if (state.sort === "loss") {
      d = diff(ca) - diff(cb);
    } else if (state.sort === "win") {
      d = diff(cb) - diff(ca);
    } else if (state.sort === "absdiff") {
      d = Math.abs(diff(cb)) - Math.abs(diff(ca));
    }
    if (d !== 0) { return d; }
    return ca.id < cb.id ? -1 : (ca.id > cb.id ? 1 : 0);
  }

  function matches(c) {
    if (state.type && c.type !== state.type) { return false; }
    if (state.kind && c.kind !== state.kind) { return false; }
    if (state.status && !c.runs.some(function (r) { return r.status === state.status; })) { return false; }
    var v = 100 * iou(c, 0);
    if (v < state.min - 1e-9 || v > state.max + 1e-9) { return false; }
    if (PAIR && state.change) {
      var d = diff(c);
      if (state.change === "win" && !(d > 1e-9)) { return false; }
      if (state.change === "loss" && !(d < -1e-9)) { return false; }
      if (state.change === "tie" && Math.abs(d) > 1e-9) { return false; }
    }
    if (state.q) {
      var hay = ((c.query || "") + "\n" + c.id).toLowerCase();
      if (hay.indexOf(state.q) < 0) { return false; }
    }
    return true;
  }

  function refilter() {
    visible = [];
    for (var i = 0; i < CASES.length; i++) { if (matches(CASES[i])) { visible.push(i); } }
    visible.sort(compare);
    state.page = 0;
    state.sel = 0;
    render();
  }

  function thumb(c, r) {
    var img = el("img", "thumb");
    img.setAttribute("loading", "lazy");
    img.setAttribute("alt", "");
    img.setAttribute("src", "thumbs/" + c.key + "." + "ab".charAt(r) + ".jpg");
    return img;
  }

  function badge(status) { return el("span", "badge st-" + (/^[a-z_]+$/.test(status) ? status : "x"), status); }

  function card(index, pos) {
    var c = CASES[index];
    var node = el("article", "case");
    node.setAttribute("data-id", c.id);
    node.setAttribute("data-iou", String(iou(c, 0)));
    node.setAttribute("data-type", c.type || "");
    node.setAttribute("data-status", c.runs.map(function (r) { return r.status; }).join(" "));
    node.setAttribute("tabindex", "0");
    if (PAIR) { node.setAttribute("data-diff", String(diff(c))); }
    if (pos === state.sel) { node.classList.add("selected"); }
    var pics = el("div", PAIR ? "pics two" : "pics");
    c.runs.forEach(function (r, k) {
      var fig = el("figure");
      fig.appendChild(thumb(c, k));
      var cap = el("figcaption");
      if (PAIR) { cap.appendChild(el("span", "run", "AB".charAt(k))); }
      cap.appendChild(el("span", "iou", "IoU " + pct(r.iou)));
      cap.appendChild(badge(r.status));
      fig.appendChild(cap);
      pics.appendChild(fig);
    });
    node.appendChild(pics);
    var meta = el("div", "meta");
    meta.appendChild(el("span", "type", typeCode(c)));
    if (c.kind) { meta.appendChild(el("span", "kind", c.kind)); }
    if (PAIR) {
      var d = 100 * diff(c);
      meta.appendChild(el("span", d > 0 ? "delta win" : (d < 0 ? "delta loss" : "delta"),
                          "\u0394 " + (d > 0 ? "+" : "") + d.toFixed(1)));
    }
    meta.appendChild(el("span", "cid", c.id));
    node.appendChild(meta);
    node.appendChild(el("p", "query", c.query || ""));
    node.addEventListener("click", function () { openCase(index); });
    return node;
  }

  function pager(target) {
    target.textContent = "";
    var pages = Math.max(1, Math.ceil(visible.length / PAGE));
    if (pages <= 1) { return; }
    var prev = el("button", "", "\u2190 previous");
    prev.disabled = state.page === 0;
    prev.addEventListener("click", function () { state.page -= 1; state.sel = state.page * PAGE; render(); });
    var next = el("button", "", "next \u2192");
    next.disabled = state.page >= pages - 1;
    next.addEventListener("click", function () { state.page += 1; state.sel = state.page * PAGE; render(); });
    target.appendChild(prev);
    target.appendChild(el("span", "", "page " + (state.page + 1) + " of " + pages));
    target.appendChild(next);
  }

  function render() {
    var box = $("cases");
    box.textContent = "";
    var start = state.page * PAGE, end = Math.min(visible.length, start + PAGE);
    var frag = document.createDocumentFragment();
    for (var p = start; p < end; p++) { frag.appendChild(card(visible[p], p)); }
    box.appendChild(frag);
    if (!visible.length) {
      var none = el("div", "empty", "No sample matches these filters. ");
      none.setAttribute("id", "no-match");
      var clear = el("button", "", "clear the filters");
      clear.setAttribute("type", "button");
      clear.addEventListener("click", clearFilters);
      none.appendChild(clear);
      box.appendChild(none);
    }
    pager($("pager-top"));
    pager($("pager-bottom"));
    $("count").textContent = visible.length + " of " + CASES.length + " samples";
    document.body.setAttribute("data-visible", String(visible.length));
    document.body.setAttribute("data-sort", state.sort);
  }

  function clearFilters() {
    [["f-type", ""], ["f-kind", ""], ["f-status", ""], ["f-change", ""], ["f-min", "0"], ["f-max", "100"],
     ["f-search", ""]].forEach(function (f) { $(f[0]).value = f[1]; });
    state.type = state.kind = state.status = state.change = state.q = "";
    state.min = 0;
    state.max = 100;
    refilter();
  }

  function field(list, name, value) {
    if (value === undefined || value === null || value === "") { return; }
    list.appendChild(el("dt", "", name));
    list.appendChild(el("dd", "", value));
  }

  var VERDICT_TEXT = { kept: "kept by the vote", outvoted: "outvoted", rejected: "rejected: unreadable, not counted",
                       unknown: "" };

  function answersBlock(r) {
    // the answers the vote kept come first (the builder sorted them): never lead with a rejected one
    var wrap = el("section", "answers");
    var kept = r.answers.filter(function (a) { return a.verdict === "kept"; }).length;
    wrap.appendChild(el("h4", "", r.answers.length + " sampled answers, " + kept + " kept by the vote" +
                                  (kept ? " (shown first)" : "")));
    var list = el("ul");  // each item carries its own sample number: no list numbers beside them
    r.answers.forEach(function (a) {
      var verdict = /^[a-z]+$/.test(a.verdict || "") ? a.verdict : "unknown";
      var item = el("li", "answer v-" + verdict);
      item.setAttribute("data-verdict", verdict);
      item.setAttribute("data-n", String(a.n));
      var box = el("details");
      if (verdict === "kept") { box.open = true; }
      var head = el("summary", "ahead");
      head.appendChild(el("span", "", "answer " + a.n + ": "));
      if (VERDICT_TEXT[verdict]) { head.appendChild(el("span", "verdict v-" + verdict, VERDICT_TEXT[verdict])); }
      var what = " " + a.status + ", " + a.objects + " object(s)";
      if (a.labels && a.labels.length) { what += ": " + a.labels.join(", "); }
      if (a.cluster !== undefined && a.cluster !== null && a.cluster !== "") { what += " \u00b7 cluster " + a.cluster; }
      head.appendChild(el("span", "", what));
      box.appendChild(head);
      if (a.error) { box.appendChild(el("div", "err", a.error)); }
      if (a.raw !== undefined) { box.appendChild(el("pre", "raw", a.raw)); }
      item.appendChild(box);
      list.appendChild(item);
    });
    wrap.appendChild(list);
    return wrap;
  }

  function fullImage(c, r, k, col) {
    var img = el("img", "full");
    var letter = "ab".charAt(k);
    img.setAttribute("alt", "sample " + c.id + " with overlays");
    img.setAttribute("src", "full/" + c.key + "." + letter + ".jpg");  // loaded only now
    img.setAttribute("data-view", "kept");
    var label = null;
    if (r.dropped_boxes || r.dropped_points) {
      // what did not make the mask is drawn only on demand, dashed
      label = el("label", "all-toggle");
      var box = el("input");
      box.setAttribute("type", "checkbox");
      box.className = "show-all";
      var n = (r.dropped_boxes || []).length;
      label.appendChild(box);
      label.appendChild(el("span", "", " also show the " + (n ? n + " box(es) " : "points ") +
                                       "of sampled answers that did not make the mask (dashed)"));
      box.addEventListener("change", function () {
        img.setAttribute("src", "full/" + c.key + "." + letter + (box.checked ? ".all" : "") + ".jpg");
        img.setAttribute("data-view", box.checked ? "all" : "kept");
      });
    }
    col.appendChild(img);
    if (label) { col.appendChild(label); }  // below the picture: two runs' pictures stay level
  }

  function runBlock(c, r, k) {
    var col = el("section", "run-col");
    if (PAIR) { col.appendChild(el("h3", "", "AB".charAt(k) + ": " + (RUNS[k].name || ""))); }
    fullImage(c, r, k, col);
    var dl = el("dl");
    field(dl, "IoU", pct(r.iou));
    field(dl, "status", r.status);
    if (r.flags) { field(dl, "flags", r.flags.join(", ")); }
    if (r.boxes) { field(dl, r.answers ? "boxes (made the mask)" : "boxes", JSON.stringify(r.boxes)); }
    if (r.points) { field(dl, r.answers ? "points (made the mask)" : "points", JSON.stringify(r.points)); }
    if (r.dropped_boxes) { field(dl, "boxes not used", String(r.dropped_boxes.length)); }
    field(dl, "error", r.error);
    col.appendChild(dl);
    if (r.answers) {
      col.appendChild(answersBlock(r));
      var listed = r.answers.some(function (a) { return a.raw === r.raw; });
      if (r.raw !== undefined && !listed) {  // a raw_text that is none of the sampled answers: shown after them
        col.appendChild(el("h4", "", "raw_text of the prediction"));
        col.appendChild(el("pre", "raw", r.raw));
      }
    } else {
      col.appendChild(el("h4", "", "raw answer"));
      col.appendChild(el("pre", "raw", r.raw !== undefined ? r.raw : "(none recorded)"));
    }
    return col;
  }

  function openCase(index) {
    var c = CASES[index];
    if (!c) { return; }
    openIndex = index;
    var pos = visible.indexOf(index);
    if (pos >= 0) { state.sel = pos; }
    var body = $("d-body");
    body.textContent = "";
    body.appendChild(el("h2", "", c.id));
    var dl = el("dl", "case-meta");
    field(dl, "reasoning type", c.type ? typeCode(c) + " " + c.type : "");
    field(dl, "query kind", c.kind);
    field(dl, "source", c.source);
    field(dl, "size", c.w + " \u00d7 " + c.h);
    if (PAIR) { field(dl, "\u0394 IoU (B \u2212 A)", (100 * diff(c)).toFixed(1)); }
    if (c.image_problem) { field(dl, "picture", c.image_problem); }
    body.appendChild(dl);
    body.appendChild(el("p", "query-full", c.query || ""));
    var cols = el("div", PAIR ? "cols two" : "cols");
    c.runs.forEach(function (r, k) { cols.appendChild(runBlock(c, r, k)); });
    body.appendChild(cols);
    $("d-pos").textContent = pos >= 0 ? (pos + 1) + " / " + visible.length : "(outside the filter)";
    $("detail").hidden = false;
    document.body.setAttribute("data-open", c.id);
    var hash = "#" + encodeURIComponent(c.id);
    if (location.hash !== hash) { history.replaceState(null, "", hash); }
  }

  function closeCase() {
    $("detail").hidden = true;
    openIndex = -1;
    document.body.removeAttribute("data-open");
    if (location.hash) { history.replaceState(null, "", location.pathname + location.search); }
  }

  function step(delta) {
    if (!visible.length) { return; }
    var pos = Math.max(0, Math.min(visible.length - 1, state.sel + delta));
    state.sel = pos;
    var page = Math.floor(pos / PAGE);
    if (page !== state.page) { state.page = page; }
    render();
    if (openIndex >= 0) { openCase(visible[pos]); }
    var sel = document.querySelector(".case.selected");
    if (sel && sel.scrollIntoView) { sel.scrollIntoView({ block: "nearest" }); }
  }

  function fromHash() {
    var raw = location.hash.replace(/^#/, "");
    if (!raw) { return; }
    var id;
    try { id = decodeURIComponent(raw); } catch (e) { id = raw; }
    if (Object.prototype.hasOwnProperty.call(BY_ID, id)) {
      var index = BY_ID[id], pos = visible.indexOf(index);
      if (pos >= 0) { state.sel = pos; state.page = Math.floor(pos / PAGE); render(); }
      openCase(index);
    } else {
      $("count").textContent = "no sample " + JSON.stringify(id) + " \u00b7 " + $("count").textContent;
    }
  }

  function options(select, values) {
    values.forEach(function (v) {
      var o = el("option", "", v[1]);
      o.value = v[0];
      select.appendChild(o);
    });
  }

  function setup() {
    var kinds = {}, statuses = {};
    CASES.forEach(function (c) {
      if (c.kind) { kinds[c.kind] = 1; }
      c.runs.forEach(function (r) { statuses[r.status] = 1; });
    });
    options($("f-type"), (DATA.types || []).map(function (t) { return [t.id, t.code + " " + t.name]; }));
    options($("f-kind"), Object.keys(kinds).sort().map(function (k) { return [k, k]; }));
    options($("f-status"), ["ok", "no_target", "parse_error", "error", "missing", "invalid"]
      .filter(function (s) { return statuses[s]; }).map(function (s) { return [s, s]; }));
    var sorts = PAIR ? [["loss", "largest loss first (B \u2212 A)"], ["win", "largest win first (B \u2212 A)"],
                        ["absdiff", "largest change first"], ["worst", "worst A first"], ["worst-b", "worst B first"]]
                     : [["worst", "worst first"], ["best", "best first"]];
    options($("f-sort"), sorts);
    $("f-sort").value = state.sort;
    if (PAIR) {
      $("change-label").hidden = false;
      $("iou-label").textContent = "IoU of A";
      document.body.setAttribute("data-mode", "pair");
    }
    $("subtitle").textContent = "data " + (DATA.data || "") + " \u00b7 " + RUNS.map(function (r, k) {
      return (PAIR ? "AB".charAt(k) + ": " : "") + r.name + (r.model ? " (" + r.model + ")" : "") + ", " + r.protocol + " protocol";
    }).join(" \u00b7 ") + " \u00b7 " + CASES.length + " samples";
    (DATA.notes || []).forEach(function (n) { $("notes").appendChild(el("li", "", "note: " + n)); });
    summary();
    function bind(id, key, parse) {
      $(id).addEventListener(id === "f-search" ? "input" : "change", function () {
        state[key] = parse($(id).value);
        refilter();
      });
    }
    bind("f-type", "type", String);
    bind("f-kind", "kind", String);
    bind("f-status", "status", String);
    bind("f-change", "change", String);
    bind("f-sort", "sort", String);
    bind("f-min", "min", function (v) { var n = parseFloat(v); return isFinite(n) ? n : 0; });
    bind("f-max", "max", function (v) { var n = parseFloat(v); return isFinite(n) ? n : 100; });
    bind("f-search", "q", function (v) { return v.trim().toLowerCase(); });
    $("d-close").addEventListener("click", closeCase);
    $("d-prev").addEventListener("click", function () { step(-1); });
    $("d-next").addEventListener("click", function () { step(1); });
    document.addEventListener("keydown", function (ev) {
      var tag = (ev.target && ev.target.tagName) || "";
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
        if (ev.key === "Escape") { ev.target.blur(); }
        return;
      }
      if (ev.key === "j" || ev.key === "ArrowRight" || ev.key === "ArrowDown") { step(1); ev.preventDefault(); }
      else if (ev.key === "k" || ev.key === "ArrowLeft" || ev.key === "ArrowUp") { step(-1); ev.preventDefault(); }
      else if (ev.key === "Enter" && visible.length) { openCase(visible[state.sel]); }
      else if (ev.key === "Escape") { closeCase(); }
      else if (ev.key === "/") { $("f-search").focus(); ev.preventDefault(); }
    });
    window.addEventListener("hashchange", fromHash);
  }

  function summary() {
    var head = $("summary-head"), body = $("summary-body");
    var cols = ["group", "n"];
    RUNS.forEach(function (r, k) {
      var tag = PAIR ? " " + "AB".charAt(k) : "";
      cols.push("gIoU" + tag, "cIoU" + tag);
    });
    if (PAIR) { cols.push("\u0394 gIoU", "\u0394 cIoU"); }
    cols.forEach(function (c) { head.appendChild(el("th", "", c)); });
    (DATA.summary || []).forEach(function (row) {
      var tr = el("tr");
      tr.setAttribute("data-group", row.key);
      tr.appendChild(el("td", "", row.title));
      tr.appendChild(el("td", "num", row.n));
      row.runs.forEach(function (r) {
        tr.appendChild(el("td", "num", fmt(r.giou)));
        tr.appendChild(el("td", "num", fmt(r.ciou)));
      });
      if (PAIR) {
        ["giou", "ciou"].forEach(function (m) {
          var a = row.runs[0][m], b = row.runs[1][m];
          var d = typeof a === "number" && typeof b === "number" ? b - a : null;
          var td = el("td", "num delta" + (d > 0 ? " win" : (d < 0 ? " loss" : "")),
                      d === null ? "\u2014" : (d > 0 ? "+" : "") + d.toFixed(1));
          td.setAttribute("data-delta-" + m, d === null ? "" : String(d));
          tr.appendChild(td);
        });
      }
      body.appendChild(tr);
    });
  }

  setup();
  refilter();
  fromHash();
})();
