// GraphView: a ProsQA problem's DAG in layers by hop distance; every step's node masses live in the
// browser, so a step (its own slider, or a linked stepper's index) is a recolour of existing nodes.

function render({ model, el }) {
  const root = leEl("div", { class: "le-root le-graph", tabindex: "0" });
  el.append(root);
  leStyle(root);
  const S = { i: 0, n: 0, g: null, st: null, prob: null, inner: null, circles: [], rings: [], tips: [], N: 0 };

  const title = leEl("div", { class: "le-title" });
  const verdict = leEl("span", { class: "le-verdict" });
  const current = leEl("span", { class: "le-current" });
  const slider = leEl("input", { type: "range", class: "le-slider", min: "0", max: "0", step: "1", value: "0" });
  const measureSel = leEl("select", { class: "le-measure", title: "node mass" },
    leEl("option", { value: "prob", text: "probability", title: "the next-token probability of the node" }),
    leEl("option", { value: "inner", text: "inner product", title: "the inner product of the step's vector with the node's embedding" }));
  const box = (name, text) => {
    const c = leEl("input", { type: "checkbox", class: `le-outline-${name}` });
    c.addEventListener("change", () => {
      const on = new Set(model.get("outline") || []);
      c.checked ? on.add(name) : on.delete(name);
      model.set("outline", [...on]); model.save_changes(); show(S.i);
    });
    return [c, leEl("label", { text })];
  };
  const [pathBox, pathLab] = box("path", "path");
  const [frontBox, frontLab] = box("frontier", "frontier");
  const controls = leEl("div", { class: "le-controls", style: { flexWrap: "wrap" } }, slider, current, measureSel, pathBox, pathLab, frontBox, frontLab);
  const svg = leEl("svg", { class: "le-graph-svg" });
  const legend = leEl("div", { class: "le-legend" });
  root.append(leEl("div", { class: "le-head", style: { flexWrap: "wrap" } }, title, verdict), controls, svg, legend);

  function load() {
    S.g = model.get("_graph"); S.st = model.get("_steps");
    S.prob = leF32(model.get("_prob")); S.inner = leF32(model.get("_inner"));
    if (!S.g || !S.g.nodes) return;
    S.N = S.g.nodes.length; S.n = (S.st.labels || []).length;
    const [W, H] = model.get("_size") || [420, 300];
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    root.style.maxWidth = `${W + 16}px`;
    svg.replaceChildren();
    const id = `le-garrow-${model.cid || Math.random().toString(36).slice(2)}`;
    svg.append(leEl("defs", {}, leEl("marker", { id, viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "6",
      markerHeight: "6", orient: "auto-start-reverse" }, leEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#999" }))));
    const X = (v) => 24 + v * (W - 48), Y = (v) => 20 + v * (H - 40);
    const R = Math.max(5, Math.min(14, 0.32 * Math.min((W - 48) / Math.max(1, S.g.n_layers), (H - 40) / Math.max(1, S.g.max_width))));
    S.R = R;
    const edges = leEl("g", { class: "le-edges" });
    for (const [a, b] of S.g.edges) {
      const na = S.g.nodes[a], nb = S.g.nodes[b];
      const x1 = X(na.x), y1 = Y(na.y), x2 = X(nb.x), y2 = Y(nb.y);
      const dx = x2 - x1, dy = y2 - y1, d = Math.hypot(dx, dy) || 1;
      edges.append(leEl("line", { x1: x1 + dx / d * R, y1: y1 + dy / d * R, x2: x2 - dx / d * (R + 2), y2: y2 - dy / d * (R + 2),
        stroke: "#bbb", "stroke-width": "1", "marker-end": `url(#${id})`, "data-edge": `${a}-${b}` }));
    }
    svg.append(edges);
    const nodes = leEl("g", { class: "le-nodes" });
    S.circles = []; S.rings = []; S.tips = [];
    S.g.nodes.forEach((nd, v) => {
      const cx = X(nd.x), cy = Y(nd.y);
      const tip = leEl("title");
      const c = leEl("circle", { cx, cy, r: R, class: "le-node", "data-node": String(v), "data-name": nd.name, stroke: "#fff" }, tip);
      const ring = leEl("circle", { cx, cy, r: R + 3, fill: "none", stroke: "none", "stroke-width": "2", class: "le-ring" });
      const opt = nd.option ? leEl("rect", { x: cx - R - 5, y: cy - R - 5, width: 2 * R + 10, height: 2 * R + 10, rx: 3,
        fill: "none", stroke: "#444", "stroke-dasharray": "3,2", class: "le-option" }) : null;
      const label = leEl("text", { x: cx, y: cy + R + 10, "text-anchor": "middle", class: "le-node-label",
        text: nd.name + (nd.root ? " (root)" : "") });
      const g = leEl("g", { visibility: nd.drawn ? "visible" : "hidden" }, ...[opt, ring, c, label].filter(Boolean));
      nodes.append(g);
      S.circles.push(c); S.rings.push(ring); S.tips.push(tip);
    });
    svg.append(nodes);
    title.textContent = S.st.title || "";
    verdict.textContent = S.st.answer !== undefined ? `answer: ${S.st.answer} ${S.st.correct ? "✓" : "✗"}` : "";
    verdict.className = "le-verdict " + (S.st.correct ? "le-right" : "le-wrong");
    slider.max = String(Math.max(0, S.n - 1));
    measureSel.value = model.get("measure") || "prob";
    const on = new Set(model.get("outline") || []);
    pathBox.checked = on.has("path"); frontBox.checked = on.has("frontier");
    show(Math.min(Math.max(0, model.get("index") | 0), Math.max(0, S.n - 1)));
  }

  function show(k) {
    if (!S.g || S.n === 0) return;
    S.i = Math.min(Math.max(0, k), S.n - 1);
    const measure = model.get("measure") || "prob";
    const a = measure === "inner" ? S.inner : S.prob;
    const row = a.subarray(S.i * S.N, (S.i + 1) * S.N);
    let lo = Infinity, hi = -Infinity;
    for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (measure === "prob") { lo = 0; hi = Math.max(hi, 1e-6); }
    const span = hi - lo || 1;
    const on = new Set(model.get("outline") || []);
    const front = new Set(on.has("frontier") ? (S.st.frontiers[S.i] || []) : []);
    const path = new Set(on.has("path") ? S.g.path : []);
    for (let v = 0; v < S.N; v++) {
      const t = (row[v] - lo) / span;
      const c = S.circles[v];
      c.setAttribute("fill", leViridis(t));
      c.setAttribute("r", (S.R * (0.55 + 0.6 * Math.sqrt(Math.max(0, t)))).toFixed(1));
      c.dataset.mass = row[v].toPrecision(4);
      const nd = S.g.nodes[v];
      S.tips[v].textContent = `${nd.name} · ${measure === "prob" ? "p" : "⟨h, e⟩"} = ${row[v].toPrecision(3)} · ` +
        (nd.dist === null ? "not reachable" : `${nd.dist} hop${nd.dist === 1 ? "" : "s"} from the root`);
      const ring = S.rings[v];
      ring.setAttribute("stroke", front.has(v) ? "#e45756" : path.has(v) ? "#f58518" : "none");
    }
    slider.value = String(S.i);
    current.textContent = `${S.st.labels[S.i]} (${S.i + 1}/${S.n})`;
    legend.textContent = measure === "prob" ? "colour and size: next-token probability (0 … max)" :
      `colour and size: inner product (${lo.toPrecision(3)} … ${hi.toPrecision(3)})`;
    root.dataset.index = String(S.i);
  }

  function goto(k) {
    k = Math.min(Math.max(0, k | 0), Math.max(0, S.n - 1));
    show(k);
    if (model.get("index") !== k) { model.set("index", k); model.save_changes(); }
  }
  slider.addEventListener("input", () => goto(parseInt(slider.value, 10)));
  measureSel.addEventListener("change", () => { model.set("measure", measureSel.value); model.save_changes(); show(S.i); });
  root.addEventListener("keydown", (e) => {
    const f = { ArrowRight: () => goto(S.i + 1), ArrowLeft: () => goto(S.i - 1), Home: () => goto(0), End: () => goto(S.n - 1) }[e.key];
    if (!f || e.target === slider || e.target === measureSel) return;
    e.preventDefault(); e.stopPropagation(); f();
  });
  const onIndex = () => show(model.get("index") | 0);   // indices past the last step show the last (linked views)
  const onMeasure = () => { measureSel.value = model.get("measure"); show(S.i); };
  const onOutline = () => { const on = new Set(model.get("outline") || []); pathBox.checked = on.has("path"); frontBox.checked = on.has("frontier"); show(S.i); };
  model.on("change:index", onIndex);
  model.on("change:measure", onMeasure);
  model.on("change:outline", onOutline);
  for (const t of ["_graph", "_steps", "_prob", "_inner"]) model.on(`change:${t}`, load);
  load();
  return () => {
    model.off("change:index", onIndex); model.off("change:measure", onMeasure); model.off("change:outline", onOutline);
    for (const t of ["_graph", "_steps", "_prob", "_inner"]) model.off(`change:${t}`, load);
  };
}

export default { render };
