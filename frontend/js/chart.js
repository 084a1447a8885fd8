// A small line chart of the training losses, drawn as inline SVG (no chart library).

import { h, svg } from "./dom.js";
import { formatNumber } from "./schema.js";

/**
 * Normalise the losses a job reports into {name: [[step, value], ...]} sorted by step.
 * Accepted: [{step, total, direction, ...}], [number, ...] (one per step),
 * {name: [number, ...]}, {name: [[step, value], ...]}, {name: [{step, value}, ...]}.
 * A plain {name: number} (only the latest values) yields one point per name at `step`.
 */
export function lossSeries(losses, step = 0) {
  const series = {};
  const add = (name, x, y) => {
    const v = Number(y);
    if (!Number.isFinite(v)) return;
    (series[name] ||= []).push([Number(x), v]);
  };
  if (Array.isArray(losses)) {
    losses.forEach((item, i) => {
      if (typeof item === "number") add("total", i + 1, item);
      else if (item && typeof item === "object") {
        const x = item.step ?? i + 1;
        const values = item.losses && typeof item.losses === "object" ? item.losses : item;
        for (const [name, v] of Object.entries(values)) if (name !== "step" && typeof v === "number") add(name, x, v);
      }
    });
  } else if (losses && typeof losses === "object") {
    for (const [name, value] of Object.entries(losses)) {
      if (Array.isArray(value)) {
        value.forEach((p, i) => {
          if (typeof p === "number") add(name, i + 1, p);
          else if (Array.isArray(p)) add(name, p[0], p[1]);
          else if (p && typeof p === "object") add(name, p.step ?? i + 1, p.value ?? p.loss);
        });
      } else if (typeof value === "number") add(name, step, value);
    }
  }
  for (const points of Object.values(series)) points.sort((a, b) => a[0] - b[0]);
  return series;
}

/** Merge newer series into older ones (for services that only report the latest values). */
export function mergeSeries(into, more) {
  for (const [name, points] of Object.entries(more)) {
    const have = (into[name] ||= []);
    for (const p of points) {
      const last = have[have.length - 1];
      if (!last || p[0] > last[0]) have.push(p); // the common case: the next step
      else {
        const i = have.findIndex((q) => q[0] >= p[0]);
        if (have[i][0] === p[0]) have[i] = p; // a step seen again (a resumed attempt)
        else have.splice(i, 0, p);
      }
    }
  }
  return into;
}

// The curves worth a line; per-model terms ("direction/ViT-B-32") are shown only if nothing else is.
function pickCurves(series) {
  const names = Object.keys(series).filter((n) => series[n].length);
  const main = names.filter((n) => !n.includes("/"));
  const chosen = (main.length ? main : names).sort((a, b) => (a === "total" ? -1 : b === "total" ? 1 : a.localeCompare(b)));
  // A term that is 0 everywhere (lambda_global = 0), or equal to the total (the only term
  // with weight), only adds a flat or hidden line.
  const total = series.total ? new Map(series.total) : null;
  const sameAsTotal = (n) => total && series[n].every((p) => Math.abs((total.get(p[0]) ?? NaN) - p[1]) <= 1e-9 * Math.max(1, Math.abs(p[1])));
  return chosen.filter((n) => n === "total" || (series[n].some((p) => p[1] !== 0) && !sameAsTotal(n))).slice(0, 4);
}

function niceTicks(lo, hi, count = 4) {
  if (lo === hi) return [lo];
  const span = hi - lo;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const mult = [1, 2, 2.5, 5, 10].find((m) => span / (m * step) <= count) || 10;
  const unit = mult * step;
  const ticks = [];
  for (let v = Math.ceil(lo / unit) * unit; v <= hi + unit * 1e-9; v += unit) ticks.push(+v.toPrecision(12));
  return ticks;
}

/**
 * The chart element for `series`; an empty-state note when there is nothing to draw yet.
 * Width/height are the SVG's coordinate system; it scales to its container.
 */
export function lossChart(series, { width = 360, height = 170, emptyText = "Losses appear after the first training step.", what = "Loss" } = {}) {
  const curves = pickCurves(series);
  if (!curves.length) return h("p", { class: "chart-empty muted" }, emptyText);
  const all = curves.flatMap((n) => series[n]);
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const yPad = (y1 - y0) * 0.08;
  y0 -= yPad; y1 += yPad;
  const m = { left: 46, right: 10, top: 10, bottom: 24 };
  const W = width - m.left - m.right;
  const H = height - m.top - m.bottom;
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * W;
  const sy = (y) => m.top + (1 - (y - y0) / (y1 - y0)) * H;

  const total = series.total || series[curves[0]];
  const last = total[total.length - 1];
  const label = `${what} chart: ${curves.join(", ")} over ${total.length} step${total.length === 1 ? "" : "s"}; latest ${curves[0]} ${formatNumber(last[1])} at step ${last[0]}.`;

  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  for (const t of niceTicks(y0, y1)) {
    const y = sy(t);
    root.append(svg("line", { x1: m.left, x2: width - m.right, y1: y, y2: y, class: "chart-grid" }));
    root.append(svg("text", { x: m.left - 6, y: y + 3.5, class: "chart-tick", "text-anchor": "end" }, formatNumber(t)));
  }
  for (const t of niceTicks(x0, x1, 5).filter((t) => Number.isInteger(t))) {
    root.append(svg("text", { x: sx(t), y: height - 6, class: "chart-tick", "text-anchor": "middle" }, String(t)));
  }
  root.append(svg("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + H, class: "chart-axis" }));
  root.append(svg("line", { x1: m.left, x2: width - m.right, y1: m.top + H, y2: m.top + H, class: "chart-axis" }));
  curves.forEach((name, i) => {
    const points = series[name];
    const d = points.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: `chart-line chart-line-${i}` }));
    if (points.length <= 40) {
      for (const p of points) root.append(svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.2, class: `chart-dot chart-line-${i}` }));
    }
  });
  const legend = h("ul", { class: "chart-legend", "aria-hidden": "true" },
    curves.map((name, i) => {
      const pts = series[name];
      return h("li", {}, h("span", { class: `swatch chart-line-${i}` }), `${name} `, h("span", { class: "muted" }, formatNumber(+pts[pts.length - 1][1].toPrecision(4))));
    }));
  return h("figure", { class: "chart-figure" }, root, legend);
}
