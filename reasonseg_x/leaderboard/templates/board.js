// reasonseg-x leaderboard: sortable table, gIoU/cIoU toggle, per-type SVG chart.
// Untrusted strings (model names) are only ever assigned to textContent.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("board-data").textContent);
  var TYPES = DATA.types || [];
  var SVG_NS = "http://www.w3.org/2000/svg";
  // Tableau 10: the chart shows at most CHART_MAX entries, each in its own hue; reported (paper)
  // entries are hatched rather than faded, so a faded hue is never mistaken for another one.
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac"];
  var CHART_MAX = 8;
  var state = { metric: "giou", sort: "overall", dir: "desc", reported: true, data: "" };

  function columns(every) {
    // the Data column only when rows of several data are shown (else the filter names it)
    var cols = [
      { key: "rank", label: "#", text: false, sortable: false },
      { key: "model", label: "Model", text: true },
      { key: "kind", label: "Status", text: true },
      { key: "overall", label: "Overall", metric: true, named: true }
    ];
    TYPES.forEach(function (t) { cols.push({ key: t.id, label: t.code, title: t.name, metric: true }); });
    cols = cols.concat([
      { key: "params", label: "Params", text: false },
      { key: "tts", label: "TTS", text: true },
      { key: "format", label: "Answer format", title: "the format the model was asked in; zero-shot: not fine-tuned for this task", text: true },
      { key: "base_model", label: "Base model", text: true }
    ]);
    return every || !state.data ? cols.concat([{ key: "data", label: "Data", text: true }]) : cols;
  }

  function block(entry, key) {
    return key === "overall" ? entry.overall : (entry.types || {})[key];
  }

  function value(entry, key) {
    if (key === "model" || key === "kind" || key === "base_model" || key === "tts" || key === "data" || key === "format") {
      var v = entry[key];
      return v === null || v === undefined ? null : String(v).toLowerCase();
    }
    if (key === "params") { return typeof entry.params === "number" ? entry.params : null; }
    var b = block(entry, key);
    if (!b) { return null; }
    var m = b[state.metric];
    return typeof m === "number" ? m : null;
  }

  function sortedEntries() {
    var rows = (DATA.entries || []).filter(function (e) {
      return (state.reported || e.kind !== "reported") && (!state.data || e.data === state.data);
    });
    var indexed = rows.map(function (e, i) { return { e: e, i: i }; });
    var sign = state.dir === "asc" ? 1 : -1;
    indexed.sort(function (a, b) {
      var va = value(a.e, state.sort), vb = value(b.e, state.sort);
      if (va === null && vb === null) { return a.i - b.i; }
      if (va === null) { return 1; }   // missing values always last
      if (vb === null) { return -1; }
      if (va < vb) { return -sign; }
      if (va > vb) { return sign; }
      return a.i - b.i;
    });
    return indexed.map(function (x) { return x.e; });
  }

  function fmt(v) { return typeof v === "number" ? v.toFixed(1) : "\u2014"; }

  function formatParams(p) {
    if (typeof p !== "number") { return "\u2014"; }
    if (p >= 1e9) { return (p / 1e9).toFixed(p % 1e9 === 0 ? 0 : 1) + "B"; }
    if (p >= 1e6) { return (p / 1e6).toFixed(0) + "M"; }
    return String(p);
  }

  function countsText(counts) {
    if (!counts) { return ""; }
    return Object.keys(counts).filter(function (k) { return typeof counts[k] === "number"; })
      .map(function (k) { return k + " " + counts[k]; }).join(", ");
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function renderHead(cols) {
    var head = document.getElementById("board-head");
    head.textContent = "";
    var metricName = state.metric === "giou" ? "gIoU" : "cIoU";
    cols.forEach(function (c) {
      var th = el("th", c.text ? "text" : "");
      th.setAttribute("data-key", c.key);
      if (c.title) { th.title = c.title; }
      var label = c.named ? c.label + " " + metricName : c.label;
      if (c.sortable === false) {
        th.textContent = label;
      } else {
        var btn = el("button", "", label);
        btn.type = "button";
        btn.addEventListener("click", function () {
          if (state.sort === c.key) { state.dir = state.dir === "desc" ? "asc" : "desc"; }
          else { state.sort = c.key; state.dir = c.text ? "asc" : "desc"; }
          update(true);
        });
        th.appendChild(btn);
        th.setAttribute("aria-sort", state.sort === c.key ? (state.dir === "asc" ? "ascending" : "descending") : "none");
      }
      head.appendChild(th);
    });
  }

  function bestValues(rows, cols) {
    var best = {};
    cols.forEach(function (c) {
      if (!c.metric) { return; }
      rows.forEach(function (e) {
        var v = value(e, c.key);
        if (v !== null && (best[c.key] === undefined || v > best[c.key])) { best[c.key] = v; }
      });
    });
    return best;
  }

  function renderBody(rows, cols) {
    var body = document.getElementById("board-body");
    body.textContent = "";
    var best = bestValues(rows, cols);
    if (!rows.length) {
      var empty = el("td", "text missing", "No entries to show (none scored yet, or all hidden by the filters).");
      empty.colSpan = cols.length;
      body.appendChild(el("tr")).appendChild(empty);
    }
    rows.forEach(function (e, i) {
      var tr = el("tr", e.kind);
      tr.setAttribute("data-model", e.model);
      tr.setAttribute("data-kind", e.kind);
      cols.forEach(function (c) {
        var td;
        if (c.key === "rank") { td = el("td", "", String(i + 1)); }
        else if (c.key === "model") {
          td = el("td", "text model");
          td.appendChild(el("span", "name", e.model));
          if (e.same_predictions_as) {  // byte-identical predictions to an earlier entry under another name
            td.appendChild(el("span", "copy-flag", " \u26a0 same predictions as " + e.same_predictions_as));
          }
          if (typeof e.viewer === "string" && /^viewers\/[0-9a-f]{16}\/index\.html$/.test(e.viewer)) {
            var link = el("a", "viewer", "cases");  // built by the host from a hex key, never a submitted string
            link.setAttribute("href", e.viewer);
            link.title = "every prediction of this entry, worst first";
            td.appendChild(link);
          }
          td.title = e.model + (e.source ? " \u2013 " + e.source : "") + (e.date ? ", " + e.date : "") +
            Object.keys(e.other || {}).map(function (k) {  // the paper's other benchmarks, gIoU/cIoU
              return "\n" + k + ": " + fmt(e.other[k].giou) + " / " + fmt(e.other[k].ciou);
            }).join("");
        }
        else if (c.key === "kind") {
          td = el("td", "text");
          var badge = el("span", "badge " + e.kind, e.kind);
          badge.title = e.kind === "verified" ? countsText(e.counts) : (e.source || "");
          td.appendChild(badge);
        }
        else if (c.key === "base_model" || c.key === "data") {
          var text = e[c.key] === null || e[c.key] === undefined ? "\u2014" : String(e[c.key]);
          td = el("td", "text small");
          td.appendChild(el("span", "clamp", text));
          td.title = text;
        }
        else if (c.key === "params") { td = el("td", "", formatParams(e.params)); }
        else if (c.text) { td = el("td", "text", e[c.key] === null || e[c.key] === undefined ? "\u2014" : String(e[c.key])); }
        else {
          var b = block(e, c.key);
          var v = b ? b[state.metric] : null;
          td = el("td", typeof v === "number" ? "" : "missing", fmt(v));
          td.setAttribute("data-value", typeof v === "number" ? String(v) : "");
          var ci = b ? b[state.metric + "_ci"] : null;
          if (ci && ci.length === 2) { td.appendChild(el("span", "ci", "[" + fmt(ci[0]) + ", " + fmt(ci[1]) + "]")); }
          if (typeof v === "number" && v === best[c.key]) { td.className += " best"; }
          if (b && typeof b.n === "number") { td.title = "n = " + b.n; }
        }
        td.setAttribute("data-col", c.key);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function hatch(defs, i) {
    var id = "hatch-" + i;
    var pattern = svg("pattern", { id: id, patternUnits: "userSpaceOnUse", width: 6, height: 6,
                                   patternTransform: "rotate(45)" });
    pattern.appendChild(svg("rect", { width: 6, height: 6, fill: PALETTE[i % PALETTE.length] }));
    pattern.appendChild(svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#fff", "stroke-width": 2.5 }));
    defs.appendChild(pattern);
    return "url(#" + id + ")";
  }

  function renderChart(rows) {
    var box = document.getElementById("chart");
    box.textContent = "";
    var shown = rows.slice(0, CHART_MAX);
    var groups = [{ id: "overall", code: "Overall" }].concat(TYPES);
    var W = 1200, H = 360, left = 46, right = 290, top = 16, bottom = 40;
    var plotW = W - left - right, plotH = H - top - bottom;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", id: "chart-svg",
                            "aria-label": "per reasoning type " + state.metric });
    var defs = svg("defs", {});
    root.appendChild(defs);
    var fills = shown.map(function (e, ei) {
      return e.kind === "reported" ? hatch(defs, ei) : PALETTE[ei % PALETTE.length];
    });
    function yOf(v) { return top + plotH * (1 - Math.max(0, Math.min(100, v)) / 100); }
    for (var t = 0; t <= 100; t += 20) {
      var y = yOf(t);
      root.appendChild(svg("line", { x1: left, x2: left + plotW, y1: y, y2: y, stroke: "#e4e8ee" }));
      root.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b7a" }, String(t)));
    }
    var groupW = plotW / groups.length;
    var barW = Math.max(2, (groupW - 16) / Math.max(shown.length, 1));
    groups.forEach(function (g, gi) {
      var x0 = left + gi * groupW + 8;
      shown.forEach(function (e, ei) {
        var b = block(e, g.id);
        var v = b ? b[state.metric] : null;
        if (typeof v !== "number") { return; }
        var x = x0 + ei * barW, w = Math.max(1, barW - 1);
        var rect = svg("rect", { x: x, y: yOf(v), width: w, height: top + plotH - yOf(v), fill: fills[ei],
                                 "class": "bar", "data-model": e.model, "data-group": g.id });
        var ci = b[state.metric + "_ci"];
        var hasCi = !!ci && ci.length === 2 && typeof ci[0] === "number" && typeof ci[1] === "number";
        var tip = e.model + " \u2013 " + g.code + ": " + v.toFixed(1) +
                  (hasCi ? " [" + ci[0].toFixed(1) + ", " + ci[1].toFixed(1) + "]" : "");
        rect.appendChild(svg("title", {}, tip));
        root.appendChild(rect);
        if (hasCi && ci[1] > ci[0]) {  // 95% CI whisker
          var cx = x + w / 2, cap = Math.min(4, w / 3);
          [[cx, yOf(ci[0]), cx, yOf(ci[1])], [cx - cap, yOf(ci[0]), cx + cap, yOf(ci[0])],
           [cx - cap, yOf(ci[1]), cx + cap, yOf(ci[1])]].forEach(function (p) {
            root.appendChild(svg("line", { x1: p[0], y1: p[1], x2: p[2], y2: p[3], stroke: "#1d232b",
                                           "stroke-width": 1, "class": "ci" }));
          });
        }
      });
      root.appendChild(svg("text", { x: left + gi * groupW + groupW / 2, y: H - bottom + 18, "text-anchor": "middle",
                                     "font-size": 12, fill: "#1d232b" }, g.code));
    });
    shown.forEach(function (e, ei) {
      var ly = top + 6 + ei * 22;
      root.appendChild(svg("rect", { x: W - right + 16, y: ly, width: 14, height: 14, fill: fills[ei] }));
      var name = e.model.length > 36 ? e.model.slice(0, 35) + "\u2026" : e.model;
      var label = svg("text", { x: W - right + 36, y: ly + 11, "font-size": 12, fill: "#1d232b",
                                "class": "legend-" + e.kind }, name);
      label.appendChild(svg("title", {}, e.model));
      root.appendChild(label);
    });
    var noteY = top + 6 + shown.length * 22 + 14;
    root.appendChild(svg("text", { x: W - right + 16, y: noteY, "font-size": 11, fill: "#5f6b7a" },
                         "hatched: reported (paper)"));
    root.appendChild(svg("text", { x: W - right + 16, y: noteY + 16, "font-size": 11, fill: "#5f6b7a" },
                         "whiskers: 95% CI (verified)"));
    box.appendChild(root);
    document.getElementById("chart-title").textContent =
      "Per reasoning type, " + (state.metric === "giou" ? "gIoU" : "cIoU") + " (top " + shown.length + " of the current order)";
  }

  function readHash() {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv[0]) { params[decodeURIComponent(kv[0])] = decodeURIComponent(kv[1] || ""); }
    });
    var keys = columns(true).map(function (c) { return c.key; });
    if (params.metric === "giou" || params.metric === "ciou") { state.metric = params.metric; }
    if (params.sort === "giou" || params.sort === "ciou") { state.metric = params.sort; state.sort = "overall"; }
    else if (params.sort && keys.indexOf(params.sort) >= 0) { state.sort = params.sort; }
    if (params.dir === "asc" || params.dir === "desc") { state.dir = params.dir; }
    if (params.reported === "0" || params.reported === "1") { state.reported = params.reported === "1"; }
    // one benchmark at a time by default (numbers on different data do not rank); "all" shows every row
    if (params.data === "all") { state.data = ""; }
    else { state.data = params.data && dataValues().indexOf(params.data) >= 0 ? params.data : defaultData(); }
  }

  function writeHash() {
    var hash = "#metric=" + state.metric + "&sort=" + encodeURIComponent(state.sort) + "&dir=" + state.dir +
               (state.reported ? "" : "&reported=0") + "&data=" + (state.data ? encodeURIComponent(state.data) : "all");
    if (location.hash !== hash && window.history && history.replaceState) {
      try { history.replaceState(null, "", hash); } catch (err) { /* file:// in some browsers */ }
    }
  }

  function update(pushHash) {
    document.body.setAttribute("data-metric", state.metric);
    document.body.setAttribute("data-sort", state.sort + ":" + state.dir);
    ["giou", "ciou"].forEach(function (m) {
      document.getElementById("metric-" + m).setAttribute("aria-pressed", String(state.metric === m));
    });
    document.getElementById("show-reported").checked = state.reported;
    document.getElementById("data-filter").value = state.data;
    var cols = columns();
    var rows = sortedEntries();
    renderHead(cols);
    renderBody(rows, cols);
    renderChart(rows);
    var verified = rows.filter(function (e) { return e.kind === "verified"; }).length;
    document.getElementById("status").textContent = verified + " verified, " + (rows.length - verified) +
      " reported" + (state.data ? " on " + state.data : "") + " (" + (DATA.entries || []).length + " entries in all)";
    if (pushHash) { writeHash(); }
  }

  function defaultData() {
    // the data with the most verified entries (else the paper's); all data when there is only one
    var values = dataValues(), best = "", bestCount = -1;
    if (values.length < 2) { return ""; }
    values.forEach(function (v) {
      var n = (DATA.entries || []).filter(function (e) { return e.data === v && e.kind === "verified"; }).length;
      if (n > bestCount) { best = v; bestCount = n; }
    });
    return best;
  }

  function dataValues() {
    var seen = [];
    (DATA.entries || []).forEach(function (e) { if (e.data && seen.indexOf(e.data) < 0) { seen.push(e.data); } });
    return seen;
  }

  (function fillDataFilter() {
    var select = document.getElementById("data-filter");
    var all = el("option", "", "all data");
    all.value = "";
    select.appendChild(all);
    dataValues().forEach(function (v) { var o = el("option", "", v); o.value = v; select.appendChild(o); });
    select.addEventListener("change", function () { state.data = select.value; update(true); });
  })();

  document.getElementById("metric-giou").addEventListener("click", function () { state.metric = "giou"; update(true); });
  document.getElementById("metric-ciou").addEventListener("click", function () { state.metric = "ciou"; update(true); });
  document.getElementById("show-reported").addEventListener("change", function (ev) {
    state.reported = ev.target.checked; update(true);
  });
  window.addEventListener("hashchange", function () { readHash(); update(false); });
  readHash();
  update(false);
})();
