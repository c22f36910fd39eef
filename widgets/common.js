// Shared helpers for the explorer's hand-written anywidget ESM (no build step, no imports).
// widgets/_esm.py concatenates this file in front of each widget's own module.

const LE_VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];

function leViridis(t) {
  if (!Number.isFinite(t)) return "rgb(200,200,200)";
  t = Math.min(1, Math.max(0, t)) * (LE_VIRIDIS.length - 1);
  const i = Math.min(LE_VIRIDIS.length - 2, Math.floor(t)), f = t - i;
  const a = LE_VIRIDIS[i], b = LE_VIRIDIS[i + 1];
  return `rgb(${Math.round(a[0] + f * (b[0] - a[0]))},${Math.round(a[1] + f * (b[1] - a[1]))},${Math.round(a[2] + f * (b[2] - a[2]))})`;
}

function leTextOn(t) { return t > 0.62 ? "#111" : "#fff"; }

function leEl(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "circle", "line", "polyline", "path", "text", "rect", "defs", "marker", "title"].includes(tag);
  const e = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") e.textContent = v;
    else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

// A bytes traitlet arrives as a DataView (ipywidgets 8); view it as float32 without copying.
function leF32(dv) {
  if (!dv) return new Float32Array(0);
  if (dv instanceof Float32Array) return dv;
  const buf = dv.buffer ? dv.buffer : dv;
  const off = dv.byteOffset || 0, len = dv.byteLength !== undefined ? dv.byteLength : buf.byteLength;
  if (off % 4 === 0) return new Float32Array(buf, off, Math.floor(len / 4));
  return new Float32Array(buf.slice(off, off + len));
}

// Show a token so that spaces and newlines are visible.
function leTok(s) {
  if (s === undefined || s === null) return "";
  return String(s).replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/^ /, "␣");
}

// A linear map from data bounds to a w×h box with padding; returns {x(v), y(v)}.
function leScale(xs, ys, w, h, pad = 14) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i], y = ys[i];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!Number.isFinite(x0)) { x0 = -1; x1 = 1; y0 = -1; y1 = 1; }
  if (x1 - x0 < 1e-9) { x0 -= 1; x1 += 1; }
  if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
  const s = Math.min((w - 2 * pad) / (x1 - x0), (h - 2 * pad) / (y1 - y0));
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  return { x: (v) => w / 2 + (v - cx) * s, y: (v) => h / 2 - (v - cy) * s };
}

// Ranked bars: [{token, score}], scores drawn relative to `scale` (max |score| when omitted).
function leBars(container, rows, { scale, colour = "#4c78a8", empty = "no probe" } = {}) {
  container.replaceChildren();
  if (!rows || rows.length === 0) {
    container.append(leEl("div", { class: "le-empty", text: empty }));
    return;
  }
  const m = scale || Math.max(1e-9, ...rows.map((r) => Math.abs(r.score)));
  for (const r of rows) {
    const w = Math.max(0, Math.min(1, Math.abs(r.score) / m)) * 100;
    container.append(leEl("div", { class: "le-bar-row", title: `${JSON.stringify(r.token)}  ${r.score.toFixed(4)}` },
      leEl("span", { class: "le-bar-token", text: leTok(r.token) }),
      leEl("span", { class: "le-bar-track" }, leEl("span", { class: "le-bar-fill", style: { width: `${w.toFixed(1)}%`, background: colour } })),
      leEl("span", { class: "le-bar-score", text: r.score.toFixed(3) })));
  }
}

const LE_CSS = `
.le-root { font: 12px/1.35 var(--jp-ui-font-family, system-ui, sans-serif); color: var(--jp-ui-font-color1, #222);
  outline: none; padding: 6px; border: 1px solid var(--jp-border-color2, #ddd); border-radius: 4px; max-width: 980px; }
.le-root:focus-visible, .le-root:focus { border-color: var(--jp-brand-color1, #1976d2); }
.le-head { display: flex; gap: 10px; align-items: baseline; margin-bottom: 4px; }
.le-title { font-weight: 600; }
.le-current { font-family: var(--jp-code-font-family, monospace); color: var(--jp-ui-font-color2, #555); }
.le-controls { display: flex; gap: 4px; align-items: center; margin: 4px 0; }
.le-controls button { min-width: 30px; height: 24px; cursor: pointer; border: 1px solid var(--jp-border-color1, #bbb);
  background: var(--jp-layout-color2, #f3f3f3); color: inherit; border-radius: 3px; }
.le-controls input[type=range] { flex: 1; min-width: 120px; }
.le-controls select { height: 24px; }
.le-counter { font-family: var(--jp-code-font-family, monospace); min-width: 5em; text-align: right; }
.le-panels { display: flex; gap: 10px; align-items: flex-start; flex-wrap: wrap; }
.le-map { position: relative; border: 1px solid var(--jp-border-color2, #e3e3e3); background: var(--jp-layout-color0, #fff); }
.le-map canvas, .le-map svg { position: absolute; left: 0; top: 0; }
.le-bars { width: 210px; }
.le-bars.le-bars-wide { width: 520px; }
.le-bars-wide .le-bar-row { grid-template-columns: 340px 1fr 44px; }
.le-bars h4 { margin: 0 0 3px 0; font-size: 11px; font-weight: 600; color: var(--jp-ui-font-color2, #555); }
.le-bar-row { display: grid; grid-template-columns: 78px 1fr 44px; gap: 4px; align-items: center; height: 17px; }
.le-bar-token { font-family: var(--jp-code-font-family, monospace); white-space: pre; overflow: hidden; text-overflow: ellipsis; }
.le-bar-track { height: 10px; background: var(--jp-layout-color2, #eee); border-radius: 2px; overflow: hidden; }
.le-bar-fill { display: block; height: 100%; transition: none; }
.le-bar-score { font-family: var(--jp-code-font-family, monospace); text-align: right; color: var(--jp-ui-font-color2, #555); }
.le-empty { color: var(--jp-ui-font-color3, #999); font-style: italic; }
.le-chart { margin-top: 6px; }
.le-chart text { font-size: 10px; fill: var(--jp-ui-font-color2, #555); }
.le-lens-grid { display: grid; gap: 1px; font-family: var(--jp-code-font-family, monospace); font-size: 10px; overflow: auto; max-height: 560px; }
.le-cell { padding: 1px 3px; white-space: pre; overflow: hidden; text-overflow: ellipsis; cursor: pointer; min-width: 0; height: 16px; line-height: 16px; }
.le-cell.le-selected { outline: 2px solid #e4572e; outline-offset: -2px; }
.le-rowhead, .le-colhead { color: var(--jp-ui-font-color2, #555); white-space: pre; overflow: hidden; text-overflow: ellipsis; height: 16px; line-height: 16px; }
.le-colhead { font-weight: 600; text-align: center; }
.le-graph-svg { display: block; background: var(--jp-layout-color0, #fff); border: 1px solid var(--jp-border-color2, #e3e3e3); }
.le-node-label { font-size: 9px; fill: var(--jp-ui-font-color2, #555); pointer-events: none; }
.le-legend { font-size: 10px; color: var(--jp-ui-font-color2, #555); }
.le-patch-text { font-family: var(--jp-code-font-family, monospace); font-size: 13px; line-height: 1.9; white-space: pre-wrap; word-break: break-all; }
.le-byte { padding: 1px 0; border-bottom: 3px solid transparent; }
.le-byte.le-podd { border-bottom-color: #f58518; }
.le-byte.le-pstart { box-shadow: inset 2px 0 0 #e45756; }
.le-patch-tokens { font-family: var(--jp-code-font-family, monospace); font-size: 12px; line-height: 1.9; }
.le-token { border: 1px solid var(--jp-border-color1, #bbb); border-radius: 2px; margin-right: 1px; padding: 0 1px; white-space: pre; }
.le-patch-chart { display: block; }
.le-tree-svg { display: block; border: 1px solid var(--jp-border-color2, #e3e3e3); background: var(--jp-layout-color0, #fff); }
.le-tree-node { cursor: pointer; }
.le-tree-text { font-family: var(--jp-code-font-family, monospace); margin: 4px 0; min-height: 2.6em; }
.le-tree-msg { color: #c62828; }
.le-verdict.le-right { color: #2e7d32; } .le-verdict.le-wrong { color: #c62828; }
`;

function leStyle(root) {
  if (!root.querySelector("style.le-style")) root.prepend(leEl("style", { class: "le-style", text: LE_CSS }));
}
