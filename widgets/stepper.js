// ThoughtStepper: the whole trajectory lives in the browser; a step is a few DOM updates.

function render({ model, el }) {
  const root = leEl("div", { class: "le-root le-stepper", tabindex: "0" });
  el.append(root);
  leStyle(root);

  const S = { n: 0, i: 0, timer: null, xs: null, ys: null, scale: null, data: null };
  const [W, H] = model.get("_size") || [380, 300];
  const CW = Math.max(560, W + 2 * 220);

  // -- skeleton -----------------------------------------------------------------------------
  const title = leEl("span", { class: "le-title" });
  const current = leEl("span", { class: "le-current" });
  const btn = (label, tip, fn, cls) => leEl("button", { class: cls, title: tip, text: label, onclick: (e) => { e.preventDefault(); fn(); root.focus({ preventScroll: true }); } });
  const playBtn = btn("▶", "play / pause (space)", () => togglePlay(), "le-play");
  const slider = leEl("input", { type: "range", class: "le-slider", min: "0", max: "0", step: "1", value: "0" });
  const counter = leEl("span", { class: "le-counter" });
  const scalarSel = leEl("select", { class: "le-scalar-select", title: "per-step scalar" });
  const controls = leEl("div", { class: "le-controls" },
    btn("«", "first (Home)", () => goto(0), "le-first"), btn("‹", "previous (←)", () => goto(S.i - 1), "le-prev"),
    playBtn, btn("›", "next (→)", () => goto(S.i + 1), "le-next"), btn("»", "last (End)", () => goto(S.n - 1), "le-last"),
    slider, counter, scalarSel);

  const mapBox = leEl("div", { class: "le-map", style: { width: `${W}px`, height: `${H}px` } });
  const canvas = leEl("canvas", { class: "le-bg" });
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
  canvas.style.width = `${W}px`; canvas.style.height = `${H}px`;
  const svg = leEl("svg", { width: W, height: H, class: "le-overlay" });
  const defs = leEl("defs", {}, leEl("marker", { id: `le-arrow-${model.cid || Math.random()}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "6", markerHeight: "6", orient: "auto-start-reverse" },
    leEl("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#555" })));
  const arrowId = defs.firstChild.getAttribute("id");
  const fullPath = leEl("polyline", { class: "le-path-full", fill: "none", stroke: "#9aa", "stroke-width": "1", "stroke-dasharray": "3 3" });
  const donePath = leEl("polyline", { class: "le-path-done", fill: "none", stroke: "#555", "stroke-width": "1.6", "marker-mid": `url(#${arrowId})`, "marker-end": `url(#${arrowId})` });
  const dots = leEl("g", { class: "le-dots" });
  const point = leEl("circle", { class: "le-point", r: "7", fill: "#e4572e", stroke: "#fff", "stroke-width": "2" });
  const pointLabel = leEl("text", { class: "le-point-label", "font-size": "12", "font-weight": "600", fill: "#222", stroke: "#fff", "stroke-width": "3", "paint-order": "stroke" });
  svg.append(defs, fullPath, donePath, dots, point, pointLabel);
  mapBox.append(canvas, svg);

  const outBars = leEl("div", { class: "le-bars-body" }), inBars = leEl("div", { class: "le-bars-body" });
  const outHead = leEl("h4"), inHead = leEl("h4");
  const outPanel = leEl("div", { class: "le-bars le-bars-output" }, outHead, outBars);
  const inPanel = leEl("div", { class: "le-bars le-bars-input" }, inHead, inBars);

  const CH = 110;
  const chart = leEl("svg", { class: "le-chart", width: CW, height: CH });
  const chartLine = leEl("g", { class: "le-chart-lines" });
  const cursor = leEl("line", { class: "le-chart-cursor", stroke: "#e4572e", "stroke-width": "1.5" });
  const cursorDot = leEl("circle", { class: "le-chart-dot", r: "4", fill: "#e4572e" });
  const chartTitle = leEl("text", { x: "4", y: "11" });
  const chartValue = leEl("text", { class: "le-chart-value", x: String(CW - 4), y: "11", "text-anchor": "end" });
  chart.append(chartLine, cursor, cursorDot, chartTitle, chartValue);

  root.append(leEl("div", { class: "le-head" }, title, current), controls,
    leEl("div", { class: "le-panels" }, mapBox, outPanel, inPanel), chart);

  // -- data ---------------------------------------------------------------------------------
  function load() {
    S.data = model.get("_data") || {};
    const c = leF32(model.get("_coords"));
    S.n = Math.floor(c.length / 2);
    S.xs = new Float32Array(S.n); S.ys = new Float32Array(S.n);
    for (let k = 0; k < S.n; k++) { S.xs[k] = c[2 * k]; S.ys[k] = c[2 * k + 1]; }
    const bg = leF32(model.get("_bg"));
    const m = Math.floor(bg.length / 2);
    const fitAll = S.data.fit !== "trajectory";
    const ax = Array.from(S.xs), ay = Array.from(S.ys);
    if (fitAll) for (let k = 0; k < m; k++) { ax.push(bg[2 * k]); ay.push(bg[2 * k + 1]); }
    S.scale = leScale(ax, ay, W, H);
    // background: drawn once
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "rgba(120,130,150,0.35)";
    const r = m > 20000 ? 0.9 : 1.6;
    for (let k = 0; k < m; k++) ctx.fillRect(S.scale.x(bg[2 * k]) - r / 2, S.scale.y(bg[2 * k + 1]) - r / 2, r, r);
    // whole path + step dots
    fullPath.setAttribute("points", pts(0, S.n - 1));
    dots.replaceChildren();
    for (let k = 0; k < S.n; k++) {
      dots.append(leEl("circle", { cx: S.scale.x(S.xs[k]).toFixed(1), cy: S.scale.y(S.ys[k]).toFixed(1), r: "3",
        fill: leViridis(S.n > 1 ? k / (S.n - 1) : 0), opacity: "0.9", onclick: () => goto(k) },
        leEl("title", { text: `${k}: ${(S.data.labels || [])[k] || ""}` })));
    }
    slider.max = String(Math.max(0, S.n - 1));
    title.textContent = S.data.title || "trajectory";
    // scalar chooser
    const names = Object.keys(S.data.scalars || {});
    scalarSel.replaceChildren(...names.map((s) => leEl("option", { value: s, text: s })));
    scalarSel.style.display = names.length ? "" : "none";
    const want = model.get("scalar");
    scalarSel.value = names.includes(want) ? want : (names[0] || "");
    drawChart();
    S.i = Math.min(Math.max(0, model.get("index") | 0), Math.max(0, S.n - 1));
    show(S.i);
  }

  function pts(a, b) {
    let s = "";
    for (let k = a; k <= b; k++) s += `${S.scale.x(S.xs[k]).toFixed(1)},${S.scale.y(S.ys[k]).toFixed(1)} `;
    return s;
  }

  let chartX = null, chartY = null, chartVals = null;
  function drawChart() {
    const name = scalarSel.value;
    chartLine.replaceChildren();
    chartVals = name ? (S.data.scalars[name] || []).map((v) => (v === null ? NaN : v)) : [];
    chartTitle.textContent = name ? `${name} per step` : "no per-step scalars";
    const fin = chartVals.filter(Number.isFinite);
    const lo = fin.length ? Math.min(...fin) : 0, hi = fin.length ? Math.max(...fin) : 1;
    const pad = 16;
    chartX = (k) => pad + (S.n > 1 ? k / (S.n - 1) : 0.5) * (CW - 2 * pad);
    chartY = (v) => CH - 8 - ((v - lo) / (hi - lo || 1)) * (CH - 26);
    let seg = "";
    const flush = () => { if (seg) chartLine.append(leEl("polyline", { points: seg, fill: "none", stroke: "#4c78a8", "stroke-width": "1.5" })); seg = ""; };
    chartVals.forEach((v, k) => { if (Number.isFinite(v)) seg += `${chartX(k).toFixed(1)},${chartY(v).toFixed(1)} `; else flush(); });
    flush();
    chartLine.append(leEl("text", { x: "4", y: String(CH - 2), text: fin.length ? `${lo.toPrecision(3)} … ${hi.toPrecision(3)}` : "" }));
  }

  function rows(space, k) {
    const p = ((S.data.probes || {})[space] || [])[k];
    if (!p) return [];
    return p.tokens.map((t, j) => ({ token: t, score: p.scores[j] }));
  }

  // -- one step: only attribute and text updates ----------------------------------------------
  function show(k) {
    if (S.n === 0) { current.textContent = "empty trajectory"; return; }
    S.i = k;
    const x = S.scale.x(S.xs[k]), y = S.scale.y(S.ys[k]);
    point.setAttribute("cx", x.toFixed(1));
    point.setAttribute("cy", y.toFixed(1));
    const label = (S.data.labels || [])[k] || "";
    const name = (S.data.names || [])[k] || String(k);
    const [sp0, sp1] = S.data.panels || ["output", "input"];
    inPanel.style.display = sp1 ? "" : "none";          // one probe (a concept path's bank): one wide panel
    outPanel.classList.toggle("le-bars-wide", !sp1);
    const top = rows(sp0, k)[0];
    pointLabel.textContent = leTok(top ? top.token : label);
    const right = x > W - 90;
    pointLabel.setAttribute("text-anchor", right ? "end" : "start");
    pointLabel.setAttribute("x", (right ? x - 10 : x + 10).toFixed(1));
    pointLabel.setAttribute("y", (y - 8).toFixed(1));
    donePath.setAttribute("points", k > 0 ? pts(0, k) : "");
    slider.value = String(k);
    counter.textContent = `${k + 1} / ${S.n}`;
    current.textContent = `${name} · ${leTok(label)}`;
    const sn = S.data.score_names || {};
    outHead.textContent = `${sp0} space (${sn[sp0] || "prob"})`;
    inHead.textContent = sp1 ? `${sp1} space (${sn[sp1] || "cos"})` : "";
    leBars(outBars, rows(sp0, k), { scale: (sn[sp0] || "prob") === "prob" ? 1 : undefined, colour: "#4c78a8", empty: `no ${sp0} probe` });
    if (sp1) leBars(inBars, rows(sp1, k), { colour: "#72b7b2", empty: `no ${sp1} probe` });
    if (chartVals && chartVals.length) {
      const cx = chartX(k).toFixed(1);
      cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx);
      cursor.setAttribute("y1", "14"); cursor.setAttribute("y2", String(CH - 6));
      const v = chartVals[k];
      cursorDot.setAttribute("cx", cx);
      cursorDot.setAttribute("cy", Number.isFinite(v) ? chartY(v).toFixed(1) : "-10");
      chartValue.textContent = Number.isFinite(v) ? `${scalarSel.value} = ${v.toPrecision(4)}` : `${scalarSel.value} = n/a`;
    }
    root.dataset.index = String(k);
  }

  function goto(k, sync = true) {
    if (S.n === 0) return;
    k = Math.min(Math.max(0, k | 0), S.n - 1);
    if (k !== S.i) show(k);
    if (sync && model.get("index") !== k) { model.set("index", k); model.save_changes(); }
  }

  function stopTimer() { if (S.timer) { clearInterval(S.timer); S.timer = null; } playBtn.textContent = "▶"; }
  function startTimer() {
    stopTimer();
    if (S.i >= S.n - 1) goto(0);
    playBtn.textContent = "❚❚";
    S.timer = setInterval(() => {
      if (S.i >= S.n - 1) { setPlaying(false); return; }
      goto(S.i + 1);
    }, Math.max(16, model.get("interval") || 400));
  }
  function setPlaying(on) {
    on ? startTimer() : stopTimer();
    if (model.get("playing") !== on) { model.set("playing", on); model.save_changes(); }
  }
  function togglePlay() { setPlaying(!S.timer); }

  // -- events -------------------------------------------------------------------------------
  slider.addEventListener("input", () => goto(parseInt(slider.value, 10)));
  scalarSel.addEventListener("change", () => { model.set("scalar", scalarSel.value); model.save_changes(); drawChart(); show(S.i); });
  root.addEventListener("keydown", (e) => {
    if (e.target === slider || e.target === scalarSel) return; // native handling, then "input"
    const keys = { ArrowRight: () => goto(S.i + 1), ArrowLeft: () => goto(S.i - 1), Home: () => goto(0),
      End: () => goto(S.n - 1), " ": () => togglePlay() };
    const f = keys[e.key];
    if (!f) return;
    e.preventDefault(); e.stopPropagation();
    f();
  });
  root.addEventListener("mousedown", (e) => {
    if (!(e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement)) root.focus({ preventScroll: true });
  });

  const onIndex = () => { const k = model.get("index") | 0; if (k !== S.i) show(Math.min(Math.max(0, k), S.n - 1)); };
  const onPlaying = () => { const on = !!model.get("playing"); if (on !== !!S.timer) (on ? startTimer() : stopTimer()); };
  const onScalar = () => { if (scalarSel.value !== model.get("scalar")) { scalarSel.value = model.get("scalar"); drawChart(); show(S.i); } };
  model.on("change:index", onIndex);
  model.on("change:playing", onPlaying);
  model.on("change:scalar", onScalar);
  model.on("change:_data", load);
  model.on("change:_coords", load);
  model.on("change:_bg", load);
  load();
  if (model.get("playing")) startTimer();

  return () => {
    stopTimer();
    model.off("change:index", onIndex); model.off("change:playing", onPlaying); model.off("change:scalar", onScalar);
    model.off("change:_data", load); model.off("change:_coords", load); model.off("change:_bg", load);
  };
}

export default { render };
