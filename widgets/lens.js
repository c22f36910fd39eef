// LensView: layers × positions grid of the logit lens; a click shows that cell's top-k and its point.

function render({ model, el }) {
  const root = leEl("div", { class: "le-root le-lens", tabindex: "0" });
  el.append(root);
  leStyle(root);
  const title = leEl("span", { class: "le-title" });
  const current = leEl("span", { class: "le-current" });
  const grid = leEl("div", { class: "le-lens-grid" });
  const barsHead = leEl("h4"), bars = leEl("div", { class: "le-bars-body" });
  const info = leEl("div", { class: "le-lens-info le-current" });
  const W = 300, H = 240;
  const mapBox = leEl("div", { class: "le-map", style: { width: `${W}px`, height: `${H}px` } });
  const svg = leEl("svg", { width: W, height: H });
  mapBox.append(svg);
  const side = leEl("div", { class: "le-lens-side", style: { display: "flex", flexDirection: "column", gap: "6px" } },
    leEl("div", { class: "le-bars le-lens-topk" }, barsHead, bars), info, mapBox);
  root.append(leEl("div", { class: "le-head" }, title, current),
    leEl("div", { class: "le-panels" }, leEl("div", { style: { flex: "1 1 420px", minWidth: "0", overflow: "auto" } }, grid), side));

  const S = { P: 0, T: 0, K: 0, probs: null, data: null, cells: [], xy: null, sel: [-1, -1], scale: null };

  function load() {
    S.data = model.get("_data") || {};
    S.P = S.data.points.length; S.T = S.data.tokens.length; S.K = S.data.k;
    S.probs = leF32(model.get("_probs"));
    const c = leF32(model.get("_coords"));
    S.xy = c.length === S.P * S.T * 2 ? c : null;
    title.textContent = S.data.title || "logit lens";
    // grid: one header row of input tokens, then rows from the last point (top) to the first
    grid.replaceChildren();
    grid.style.gridTemplateColumns = `72px repeat(${S.T}, minmax(44px, 1fr))`;
    grid.append(leEl("div", { class: "le-colhead", text: "" }));
    S.data.tokens.forEach((t, j) => grid.append(leEl("div", { class: "le-colhead", title: `position ${j}: ${JSON.stringify(t)}`, text: leTok(t) })));
    S.cells = Array.from({ length: S.P }, () => new Array(S.T));
    for (let p = S.P - 1; p >= 0; p--) {
      grid.append(leEl("div", { class: "le-rowhead", text: S.data.points[p] }));
      for (let t = 0; t < S.T; t++) {
        const pr = S.probs[(p * S.T + t) * S.K];
        const tok = S.data.top_tokens[p][t][0];
        const tr = S.data.target_rank ? S.data.target_rank[p][t] : null;
        const ent = S.data.entropy ? S.data.entropy[p][t] : null;
        const cell = leEl("div", {
          class: "le-cell", "data-point": S.data.points[p], "data-pos": String(t),
          title: `${S.data.points[p]} · pos ${t} ${JSON.stringify(S.data.tokens[t])}\ntop-1 ${JSON.stringify(tok)} p=${pr.toFixed(3)}` +
            (ent !== null && ent !== undefined ? `\nentropy ${Number(ent).toFixed(3)}` : "") + (tr !== null && tr !== undefined ? `\ntarget rank ${tr}` : ""),
          style: { background: leViridis(pr), color: leTextOn(pr) }, text: leTok(tok),
          onclick: () => select(p, t, true),
        });
        S.cells[p][t] = cell;
        grid.append(cell);
      }
    }
    // map: every cell's point faint
    svg.replaceChildren();
    if (S.xy) {
      const xs = [], ys = [];
      for (let k = 0; k < S.P * S.T; k++) { xs.push(S.xy[2 * k]); ys.push(S.xy[2 * k + 1]); }
      S.scale = leScale(xs, ys, W, H);
      const g = leEl("g", { class: "le-lens-all" });
      for (let k = 0; k < S.P * S.T; k++) g.append(leEl("circle", { cx: S.scale.x(xs[k]).toFixed(1), cy: S.scale.y(ys[k]).toFixed(1), r: "2", fill: "#b8bec9" }));
      svg.append(g, leEl("polyline", { class: "le-lens-path", fill: "none", stroke: "#555", "stroke-width": "1.4" }),
        leEl("g", { class: "le-lens-dots" }),
        leEl("circle", { class: "le-point", r: "6", fill: "#e4572e", stroke: "#fff", "stroke-width": "2", cx: "-20", cy: "-20" }),
        leEl("text", { class: "le-point-label", "font-size": "11", "font-weight": "600", stroke: "#fff", "stroke-width": "3", "paint-order": "stroke", fill: "#222" }));
    } else {
      svg.append(leEl("text", { x: "8", y: "20", "font-size": "11", fill: "#888", text: "pass trace= to place cells on a map" }));
    }
    const s = model.get("selected") || [];
    if (s.length === 2 && s[0] >= 0) select(s[0], s[1], false);
    else { barsHead.textContent = "click a cell"; bars.replaceChildren(); }
  }

  function select(p, t, sync) {
    if (p < 0 || t < 0 || p >= S.P || t >= S.T) return;
    const [op, ot] = S.sel;
    if (op >= 0 && S.cells[op] && S.cells[op][ot]) S.cells[op][ot].classList.remove("le-selected");
    S.sel = [p, t];
    S.cells[p][t].classList.add("le-selected");
    const rows = [];
    for (let j = 0; j < S.K; j++) rows.push({ token: S.data.top_tokens[p][t][j], score: S.probs[(p * S.T + t) * S.K + j] });
    barsHead.textContent = `top-${S.K} at ${S.data.points[p]}, position ${t} (${leTok(S.data.tokens[t])})`;
    leBars(bars, rows, { scale: 1, colour: "#4c78a8" });
    const ent = S.data.entropy ? S.data.entropy[p][t] : null;
    const tr = S.data.target_rank ? S.data.target_rank[p][t] : null;
    info.textContent = (ent !== null && ent !== undefined ? `entropy ${Number(ent).toFixed(3)}` : "") +
      (tr !== null && tr !== undefined ? `   target rank ${tr}` : "");
    current.textContent = `${S.data.points[p]} · pos ${t}`;
    root.dataset.selected = `${S.data.points[p]}:${t}`;
    if (S.xy) {
      // this position's path through the points, and the selected point on it
      let pts = "";
      const dots = svg.querySelector(".le-lens-dots");
      dots.replaceChildren();
      for (let q = 0; q < S.P; q++) {
        const k = q * S.T + t, x = S.scale.x(S.xy[2 * k]), y = S.scale.y(S.xy[2 * k + 1]);
        pts += `${x.toFixed(1)},${y.toFixed(1)} `;
        dots.append(leEl("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: "3", fill: leViridis(S.P > 1 ? q / (S.P - 1) : 0), onclick: () => select(q, t, true) },
          leEl("title", { text: S.data.points[q] })));
      }
      svg.querySelector(".le-lens-path").setAttribute("points", pts);
      const k = p * S.T + t, x = S.scale.x(S.xy[2 * k]), y = S.scale.y(S.xy[2 * k + 1]);
      const pt = svg.querySelector(".le-point");
      pt.setAttribute("cx", x.toFixed(1)); pt.setAttribute("cy", y.toFixed(1));
      const lab = svg.querySelector(".le-point-label");
      lab.setAttribute("x", (x + 9).toFixed(1)); lab.setAttribute("y", (y - 7).toFixed(1));
      lab.textContent = `${S.data.points[p]}: ${leTok(S.data.top_tokens[p][t][0])}`;
    }
    if (sync) { model.set("selected", [p, t]); model.save_changes(); }
  }

  root.addEventListener("keydown", (e) => {
    const [p, t] = S.sel;
    if (p < 0) return;
    const moves = { ArrowUp: [1, 0], ArrowDown: [-1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const m = moves[e.key];
    if (!m) return;
    e.preventDefault(); e.stopPropagation();
    select(Math.min(S.P - 1, Math.max(0, p + m[0])), Math.min(S.T - 1, Math.max(0, t + m[1])), true);
  });
  const onSel = () => { const s = model.get("selected") || []; if (s.length === 2 && (s[0] !== S.sel[0] || s[1] !== S.sel[1])) select(s[0], s[1], false); };
  model.on("change:selected", onSel);
  model.on("change:_data", load);
  model.on("change:_probs", load);
  model.on("change:_coords", load);
  load();
  return () => { model.off("change:selected", onSel); model.off("change:_data", load); model.off("change:_probs", load); model.off("change:_coords", load); };
}

export default { render };
