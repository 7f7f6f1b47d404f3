(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("data").textContent);
  var M = D.meta, B64 = D.acts, A = {};
  var text = M.text, n = text.length;

  // Activations: per key one base64 string of bytes, unit-major ([H][n]). A byte q < 255
  // stands for the colour scale position t = q / 127 - 1 in [-1, 1]; 255 is NaN/Inf.
  function acts(key) {
    if (!(key in A)) {
      var s = atob(B64[key]), a = new Uint8Array(s.length);
      for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
      A[key] = a;
    }
    return A[key];
  }
  function at(key, unit, i) { return acts(key)[unit * n + i]; }
  var $ = function (id) { return document.getElementById(id); };
  var layerSel = $("layer"), qSel = $("quantity"), unitIn = $("unit"), pre = $("text");

  // keys "l0.c" -> layer "l0", quantity "c"; keep the order given by Python.
  function split(key) { var j = key.lastIndexOf("."); return [key.slice(0, j), key.slice(j + 1)]; }
  var layers = [], byLayer = {};
  M.keys.forEach(function (key) {
    var p = split(key);
    if (!(p[0] in byLayer)) { byLayer[p[0]] = []; layers.push(p[0]); }
    byLayer[p[0]].push(p[1]);
  });
  layers.forEach(function (l) { layerSel.add(new Option(l || "(none)", l)); });

  // Colour: the same formula as viz._rgb in Python, from the byte's scale position.
  function scaled(q) { return q / 127 - 1; }
  // What the hover shows: the value itself (gates, h), or tanh(c) for the cell state.
  function shown(q, kind) {
    var t = scaled(q);
    return kind === "gate" ? (t + 1) / 2 : t;
  }
  function colour(q) {
    if (q === 255) return "rgb(221, 221, 221)";
    var t = scaled(q), e = t >= 0 ? M.red : M.blue, a = Math.abs(t);
    var rgb = e.map(function (x) { return Math.round(255 + (x - 255) * a); });
    return "rgb(" + rgb.join(", ") + ")";
  }

  // One span per character; newline and tab drawn visibly, control characters as symbols.
  var spans = new Array(n), frag = document.createDocumentFragment();
  for (var i = 0; i < n; i++) {
    var ch = text[i], s = document.createElement("span"), code = ch.charCodeAt(0);
    s.className = "c";
    if (ch === "\n") { s.textContent = "\u21b5\n"; s.className = "c w"; }
    else if (ch === "\t") { s.textContent = "\u2192\t"; s.className = "c w"; }
    else if (code < 32 || code === 127) {
      s.textContent = String.fromCharCode(code === 127 ? 0x2421 : 0x2400 + code);
      s.className = "c w";
    } else s.textContent = ch;
    s._i = i;
    spans[i] = s; frag.appendChild(s);
  }
  pre.appendChild(frag);
  if (M.total > n) {
    var more = document.createElement("div");
    more.style.color = "#999";
    more.textContent = "\u2026 (" + n + " of " + M.total + " characters shown)";
    pre.appendChild(more);
  }

  var cur = { key: M.keys[0], unit: 0 };

  function fill(key) {
    var p = split(key);
    layerSel.value = p[0];
    qSel.innerHTML = "";
    byLayer[p[0]].forEach(function (q) { qSel.add(new Option(q, q)); });
    qSel.value = p[1];
  }

  function legend(kind) {
    $("lo").textContent = kind === "gate" ? "0" : kind === "cell" ? "tanh(c) \u22121" : "\u22121";
    $("hi").textContent = kind === "gate" ? "1" : "+1";
  }

  function select(key, unit) {
    if (!(key in B64)) return;
    var h = M.units[key];
    unit = Math.max(0, Math.min(h - 1, unit | 0));
    cur = { key: key, unit: unit };
    fill(key);
    unitIn.max = h - 1; unitIn.value = unit;
    $("units").textContent = "of 0\u2013" + (h - 1);
    var v = acts(key), base = unit * n, kind = M.kind[key];
    legend(kind);
    for (var i = 0; i < n; i++) {
      var st = spans[i].style, q = v[base + i];
      st.backgroundColor = colour(q);
      // light text on the darkest backgrounds
      st.color = q !== 255 && Math.abs(scaled(q)) > 0.7 ? "#fff" : "";
    }
    var id = key + "/" + unit;
    document.querySelectorAll("#top li").forEach(function (li) {
      li.className = li.dataset.cell === id ? "on" : "";
    });
    document.title = id + " \u2013 " + (M.title || "rnnkit");
    if (decodeURIComponent(location.hash.slice(1)) !== id) {   // (no hashchange event)
      try { history.replaceState(null, "", "#" + id); } catch (err) { location.hash = id; }
    }
  }

  function fromHash() {
    var h = decodeURIComponent(location.hash.slice(1)), j = h.lastIndexOf("/");
    if (j < 0) return false;
    var key = h.slice(0, j), unit = parseInt(h.slice(j + 1), 10);
    if (!(key in B64) || isNaN(unit)) return false;
    select(key, unit);
    return true;
  }

  // The interpretable-cell list.
  var ol = $("top");
  M.top.forEach(function (t) {
    var li = document.createElement("li"), a = document.createElement("a"), id = t[1] + "/" + t[2];
    li.dataset.cell = id;
    a.href = "#" + id; a.textContent = id;
    var r = document.createElement("span");
    r.className = "r";
    r.textContent = " " + t[0] + " r=" + (t[3] >= 0 ? "+" : "\u2212") + Math.abs(t[3]).toFixed(2);
    li.appendChild(a); li.appendChild(r); ol.appendChild(li);
  });
  if (!M.top.length) $("more").textContent = "(none: no unit and feature vary over the text)";

  layerSel.onchange = function () {
    var qs = byLayer[layerSel.value], q = split(cur.key)[1];
    select(layerSel.value + "." + (qs.indexOf(q) >= 0 ? q : qs[0]), cur.unit);
  };
  qSel.onchange = function () { select(layerSel.value + "." + qSel.value, cur.unit); };
  unitIn.onchange = function () { select(cur.key, parseInt(unitIn.value, 10) || 0); };
  $("prev").onclick = function () { select(cur.key, cur.unit - 1); };
  $("next").onclick = function () { select(cur.key, cur.unit + 1); };
  window.addEventListener("hashchange", fromHash);

  var info = $("info");
  pre.addEventListener("mouseover", function (e) {
    var i = e.target._i;
    if (i === undefined) return;
    var q = at(cur.key, cur.unit, i), ch = text[i], kind = M.kind[cur.key];
    var c = ch === "\n" ? "\\n" : ch === "\t" ? "\\t" : ch;
    info.textContent = "char " + i + " '" + c + "'   " + cur.key + "/" + cur.unit +
      (kind === "cell" ? " tanh(c)" : "") + " \u2248 " +
      (q === 255 ? "nan" : shown(q, kind).toFixed(2));
  });

  if (M.keys.length && !fromHash()) {
    if (M.top.length) select(M.top[0][1], M.top[0][2]); else select(M.keys[0], 0);
  }
})();
