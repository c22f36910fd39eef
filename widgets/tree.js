// ThoughtTree: the search tree of thoughts; the replay slider shows it growing in the order it
// happened (in the browser); clicking a thought shows it and offers expand / prune / accept / write.

function render({ model, el }) {
  const root = leEl("div", { class: "le-root le-tree", tabindex: "0" });
  el.append(root);
  leStyle(root);
  const S = { d: null, circles: {}, lines: {} };
  const title = leEl("span", { class: "le-title" });
  const calls = leEl("span", { class: "le-current le-calls" });
  const slider = leEl("input", { type: "range", class: "le-slider le-replay", min: "0", max: "0", step: "1", value: "0" });
  const counter = leEl("span", { class: "le-counter" });
  const svg = leEl("svg", { class: "le-tree-svg" });
  const text = leEl("div", { class: "le-tree-text" });
  const input = leEl("input", { type: "text", class: "le-tree-input", placeholder: "write a thought under the selected one", style: { flex: "1" } });
  const msg = leEl("span", { class: "le-tree-msg" });
  const act = (label, action, extra) => leEl("button", { class: `le-${action}`, text: label, onclick: (e) => {
    e.preventDefault(); msg.textContent = "…";
    model.send({ action, node: model.get("selected"), ...(extra ? extra() : {}) });
  } });
  const expandBtn = act("expand", "expand"), pruneBtn = act("prune", "prune"), acceptBtn = act("accept", "accept");
  const writeBtn = act("write", "write", () => { const t = input.value; input.value = ""; return { text: t }; });
  root.append(leEl("div", { class: "le-head", style: { flexWrap: "wrap" } }, title, calls),
    leEl("div", { class: "le-controls" }, leEl("span", { text: "replay" }), slider, counter), svg, text,
    leEl("div", { class: "le-controls" }, expandBtn, pruneBtn, acceptBtn, input, writeBtn, msg));

  function layout(nodes) {   // depth → columns; leaves spaced in order of a depth-first walk
    const kids = {}; nodes.forEach((n) => { kids[n.id] = []; });
    nodes.forEach((n) => { if (n.parent !== null) kids[n.parent].push(n.id); });
    const y = {}; let leaf = 0;
    const walk = (id) => { if (!kids[id].length) { y[id] = leaf++; return; } kids[id].forEach(walk); y[id] = (y[kids[id][0]] + y[kids[id][kids[id].length - 1]]) / 2; };
    walk(0);
    return { y, leaves: Math.max(1, leaf), depth: Math.max(1, ...nodes.map((n) => n.depth)) };
  }

  function load() {
    S.d = model.get("_tree");
    if (!S.d || !S.d.nodes) return;
    const [W, H] = model.get("_size") || [760, 360];
    svg.setAttribute("width", W); svg.setAttribute("height", H);
    root.style.maxWidth = `${W + 16}px`;
    const L = layout(S.d.nodes);
    const X = (dep) => 20 + (W - 170) * dep / L.depth, Y = (i) => 14 + (H - 28) * (L.leaves > 1 ? L.y[i] / (L.leaves - 1) : 0.5);
    svg.replaceChildren(); S.circles = {}; S.lines = {}; S.labels = {};
    const eg = leEl("g"), ng = leEl("g");
    for (const n of S.d.nodes) {
      if (n.parent !== null) {
        const p = S.d.nodes[n.parent];
        const l = leEl("line", { x1: X(p.depth), y1: Y(p.id), x2: X(n.depth), y2: Y(n.id), stroke: "#bbb", "data-node": String(n.id) });
        eg.append(l); S.lines[n.id] = l;
      }
      const c = leEl("circle", { cx: X(n.depth), cy: Y(n.id), r: 6, class: "le-tree-node", "data-node": String(n.id),
        onclick: () => { model.set("selected", n.id); model.save_changes(); show(); } },
        leEl("title", { text: `${n.text}\n${n.source}${n.value !== null ? " · value " + n.value.toFixed(3) : ""}` }));
      const short = n.text.length > 22 ? n.text.slice(0, 21) + "…" : n.text;
      const lab = leEl("text", { x: X(n.depth) + 8, y: Y(n.id) - 7, class: "le-node-label", text: short });
      ng.append(c, lab); S.circles[n.id] = c; S.labels = S.labels || {}; S.labels[n.id] = lab;
    }
    svg.append(eg, ng);
    title.textContent = S.d.nodes[0].text;
    calls.textContent = "calls: " + Object.entries(S.d.calls).map(([k, v]) => `${k} ${v}`).join(" · ");
    slider.max = String(S.d.events.length);
    expandBtn.disabled = !S.d.can_expand;
    show();
  }

  function show() {
    if (!S.d) return;
    const ev = S.d.events, st = model.get("step"), upto = st < 0 ? ev.length : Math.min(st, ev.length);
    const seen = new Set(), pruned = new Set(), valued = new Set();
    let chosenAt = -1;
    for (let i = 0; i < upto; i++) {
      const [kind, id] = ev[i];
      if (kind === "root" || kind === "propose") seen.add(id);
      else if (kind === "prune") pruned.add(id);
      else if (kind === "value") valued.add(id);
      else if (kind === "choose") chosenAt = id;
    }
    const chosen = new Set();
    if (chosenAt >= 0) { let c = chosenAt; while (c !== null && c !== undefined) { chosen.add(c); c = S.d.nodes[c].parent; } }
    const sel = model.get("selected");
    for (const n of S.d.nodes) {
      const c = S.circles[n.id], vis = seen.has(n.id);
      c.style.display = vis ? "" : "none";
      if (S.labels && S.labels[n.id]) S.labels[n.id].style.display = vis ? "" : "none";
      if (S.lines[n.id]) {
        S.lines[n.id].style.display = vis ? "" : "none";
        S.lines[n.id].setAttribute("stroke", chosen.has(n.id) ? "#f58518" : "#bbb");
        S.lines[n.id].setAttribute("stroke-width", chosen.has(n.id) ? "2.5" : "1");
      }
      const v = valued.has(n.id) && n.value !== null ? n.value : null;
      c.setAttribute("fill", pruned.has(n.id) ? "#ddd" : v === null ? "#9ecae9" : leViridis(Math.min(1, Math.max(0, v))));
      c.setAttribute("stroke", n.id === sel ? "#e45756" : chosen.has(n.id) ? "#f58518" : "#fff");
      c.setAttribute("stroke-width", n.id === sel || chosen.has(n.id) ? "3" : "1");
      c.classList.toggle("le-pruned", pruned.has(n.id));
      c.classList.toggle("le-chosen", chosen.has(n.id));
    }
    slider.value = String(upto);
    counter.textContent = `${upto} / ${ev.length}`;
    const n = S.d.nodes[sel] || S.d.nodes[0];
    text.textContent = `#${n.id} · ${n.source}${n.value !== null ? " · value " + n.value.toFixed(3) : ""}${S.d.pruned.includes(n.id) ? " · pruned" : ""}: ${n.text}`;
    root.dataset.visible = String(seen.size);
    root.dataset.nodes = String(S.d.nodes.length);
  }

  slider.addEventListener("input", () => {
    const v = parseInt(slider.value, 10);
    model.set("step", v >= S.d.events.length ? -1 : v); model.save_changes(); show();
  });
  model.on("msg:custom", (m) => { msg.textContent = m.error ? m.error : ""; });
  model.on("change:_tree", load);
  model.on("change:step", show);
  model.on("change:selected", show);
  load();
  return () => { model.off("change:_tree", load); model.off("change:step", show); model.off("change:selected", show); };
}

export default { render };
