// PatchView: bytes coloured by entropy, BLT patch boundaries that move with the threshold slider and
// the rule toggle, all in the browser (the rule runs here, on entropies sent once).

function render({ model, el }) {
  const root = leEl("div", { class: "le-root le-patches", tabindex: "0" });
  el.append(root);
  leStyle(root);
  const S = { H: null, data: null, spans: [], tokSpans: [], byteChar: null, charStart: null };

  const title = leEl("span", { class: "le-title" });
  const stats = leEl("span", { class: "le-current le-patch-stats" });
  const rule = leEl("select", { class: "le-rule", title: "patching rule" },
    leEl("option", { value: "global", text: "global: H(x_t) > θ" }),
    leEl("option", { value: "monotonic", text: "monotonic: H(x_t) − H(x_t−1) > θ" }));
  const slider = leEl("input", { type: "range", class: "le-slider le-threshold", min: "0", max: "1", step: "0.001", value: "0" });
  const thText = leEl("span", { class: "le-counter le-theta" });
  const maxLen = leEl("input", { type: "number", class: "le-maxlen", min: "0", step: "1", value: "0", title: "maximum patch length (0: none)", style: { width: "4em" } });
  const controls = leEl("div", { class: "le-controls", style: { flexWrap: "wrap" } }, rule, leEl("span", { text: "θ" }), slider, thText,
    leEl("span", { text: "max length" }), maxLen);
  const textBox = leEl("div", { class: "le-patch-text" });
  const chart = leEl("svg", { class: "le-patch-chart" });
  const tokBox = leEl("div", { class: "le-patch-tokens" });
  root.append(leEl("div", { class: "le-head", style: { flexWrap: "wrap" } }, title, stats), controls, textBox, chart,
    leEl("div", { class: "le-legend", text: "tokens of the same text (BPE):" }), tokBox);

  function starts() {   // the same rule as explorer.patches.patching.starts, then whole characters
    const H = S.H, n = H.length, th = model.get("threshold"), r = model.get("rule"), ml = model.get("max_len") | 0;
    const m = new Uint8Array(n);
    if (!n) return m;
    m[0] = 1;
    for (let t = 1; t < n; t++) m[t] = (r === "global" ? H[t] > th : H[t] - H[t - 1] > th) ? 1 : 0;
    if (ml > 0) { let run = 0; for (let t = 0; t < n; t++) { run = m[t] ? 1 : run + 1; if (run > ml) { m[t] = 1; run = 1; } } }
    for (let t = 0; t < n; t++) if (m[t] && !S.charStart[t]) { m[t] = 0; let s = t; while (s > 0 && !S.charStart[s]) s--; m[s] = 1; }
    return m;
  }

  function load() {
    S.data = model.get("_data"); S.H = leF32(model.get("_entropy"));
    if (!S.data || !S.data.chars) return;
    const n = S.data.n_bytes, W = model.get("_width") || 760;
    root.style.maxWidth = `${W + 16}px`;
    S.charStart = new Uint8Array(n);
    let hmax = 0;
    for (const v of S.H) hmax = Math.max(hmax, v);
    S.hmax = hmax || 1;
    textBox.replaceChildren(); S.spans = [];
    for (const [a, b, ch] of S.data.chars) {
      S.charStart[a] = 1;
      const hs = Array.from(S.H.subarray(a, b));
      const sp = leEl("span", { class: "le-byte", "data-start": String(a),
        title: `${JSON.stringify(ch)} · bytes ${a}${b - a > 1 ? "–" + (b - 1) : ""} · H = ${hs.map(h => h.toFixed(2)).join(", ")} nats`,
        text: ch === "\n" ? "↵" : ch });
      const t = S.H[a] / S.hmax;
      sp.style.background = leViridis(t); sp.style.color = leTextOn(t);
      textBox.append(sp);
      if (ch === "\n") textBox.append(leEl("br"));
      S.spans.push(sp);
    }
    tokBox.replaceChildren();
    (S.data.tokens || []).forEach(([a, b, tx], i) => tokBox.append(leEl("span", { class: "le-token", title: `bytes ${a}–${b - 1}`, text: tx.replace(/\n/g, "↵") })));
    chart.setAttribute("width", W); chart.setAttribute("height", 90);
    S.X = (t) => 4 + (W - 8) * (n > 1 ? t / (n - 1) : 0.5);
    S.Y = (v) => 84 - 78 * (v / S.hmax);
    const pts = Array.from(S.H, (v, t) => `${S.X(t).toFixed(1)},${S.Y(v).toFixed(1)}`).join(" ");
    S.marks = leEl("g", { class: "le-marks" });
    chart.replaceChildren(leEl("polyline", { points: pts, fill: "none", stroke: "#4c78a8", "stroke-width": "1" }), S.marks);
    title.textContent = `byte patches · ${S.data.model}`;
    rule.value = model.get("rule"); maxLen.value = String(model.get("max_len") | 0);
    setRange(); update();
  }

  function setRange() {
    const H = S.H; let lo = Infinity, hi = -Infinity;
    for (let t = 0; t < H.length; t++) {
      const v = model.get("rule") === "global" ? H[t] : (t ? H[t] - H[t - 1] : 0);
      lo = Math.min(lo, v); hi = Math.max(hi, v);
    }
    slider.min = String(Math.min(lo, model.get("threshold"))); slider.max = String(Math.max(hi, model.get("threshold")));
    slider.value = String(model.get("threshold"));
  }

  function update() {
    if (!S.H || !S.data) return;
    const m = starts(), n = S.H.length, W = model.get("_width") || 760;
    let p = 0, k = 0;
    for (const sp of S.spans) {   // class changes only where a span's state changed
      const a = sp._start ?? (sp._start = +sp.dataset.start);
      if (m[a]) p++;
      const cls = (m[a] ? 1 : 0) | (p % 2 === 1 ? 2 : 0);
      if (sp._cls !== cls) { sp.classList.toggle("le-pstart", !!(cls & 1)); sp.classList.toggle("le-podd", !!(cls & 2)); sp._cls = cls; }
    }
    for (let t = 0; t < n; t++) k += m[t];
    const nt = (S.data.tokens || []).length;
    stats.textContent = `${n} bytes · ${k} patches · ${(n / k).toFixed(2)} bytes/patch` +
      (nt ? ` · ${nt} tokens · ${(n / nt).toFixed(2)} bytes/token · ${(k / nt).toFixed(2)} patches/token` : "");
    root.dataset.patches = String(k);
    thText.textContent = `θ = ${(+model.get("threshold")).toFixed(3)}`;
    // the threshold (global rule) and a tick at every patch start, over the entropy line drawn once in load()
    const X = S.X, Y = S.Y;
    const kids = [];
    if (model.get("rule") === "global") {
      const y = Y(Math.min(S.hmax, Math.max(0, model.get("threshold")))).toFixed(1);
      kids.push(leEl("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#e45756", "stroke-dasharray": "4,3", class: "le-threshold-line" }));
    }
    let d = "";
    for (let t = 0; t < n; t++) if (m[t]) d += `M${X(t).toFixed(1)},84V88`;
    kids.push(leEl("path", { d, stroke: "#e45756", class: "le-start-ticks" }));
    S.marks.replaceChildren(...kids);
  }

  const onSlide = () => { model.set("threshold", parseFloat(slider.value)); update(); model.save_changes(); };
  slider.addEventListener("input", onSlide);
  slider.addEventListener("keydown", (e) => {   // ←/→ step the threshold here (JupyterLab would take the keys)
    const d = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[e.key];
    if (!d) return;
    e.preventDefault(); e.stopPropagation();
    const step = (parseFloat(slider.max) - parseFloat(slider.min)) / 200;
    slider.value = String(Math.min(parseFloat(slider.max), Math.max(parseFloat(slider.min), parseFloat(slider.value) + d * step)));
    onSlide();
  });
  rule.addEventListener("change", () => {   // each rule starts from its own calibrated threshold
    model.set("rule", rule.value);
    model.set("threshold", (S.data.calibrated || {})[rule.value] ?? model.get("threshold"));
    setRange(); update(); model.save_changes();
  });
  maxLen.addEventListener("change", () => { model.set("max_len", Math.max(0, parseInt(maxLen.value, 10) || 0)); update(); model.save_changes(); });
  const onTh = () => { if (parseFloat(slider.value) !== model.get("threshold")) { setRange(); } update(); };
  const onRule = () => { rule.value = model.get("rule"); setRange(); update(); };
  const onMax = () => { maxLen.value = String(model.get("max_len") | 0); update(); };
  model.on("change:threshold", onTh); model.on("change:rule", onRule); model.on("change:max_len", onMax);
  model.on("change:_data", load); model.on("change:_entropy", load);
  load();
  return () => {
    model.off("change:threshold", onTh); model.off("change:rule", onRule); model.off("change:max_len", onMax);
    model.off("change:_data", load); model.off("change:_entropy", load);
  };
}

export default { render };
