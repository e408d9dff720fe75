// The Pareto front of a job with two objectives (evaluation.objectives): each finalist no other
// beats on both, as a point of full-dev score against its cost per use (prompt length in tokens,
// or USD per call), joined in order of cost. A small SVG: a handful of points needs no library.

export interface ParetoPoint {
  candidate_id: string;
  score: number;
  prompt_tokens?: number | null;
  cost_per_call?: number | null;
  text: string;
}

export interface Placed {
  id: string;
  x: number;
  y: number;
  cost: number;
  score: number;
  text: string;
}

export interface Layout {
  costName: "prompt tokens" | "USD per call";
  points: Placed[]; // in order of cost, lowest first
  xRange: [number, number];
  yRange: [number, number];
}

const PAD = { left: 48, right: 12, top: 10, bottom: 34 };

function costOf(p: ParetoPoint): number | null {
  return p.prompt_tokens ?? p.cost_per_call ?? null;
}

/** Where each point goes in a ``width`` x ``height`` box: cost to the right, score up. A range
 * of one value is widened so that its points sit in the middle. */
export function scatterLayout(front: ParetoPoint[], width: number, height: number): Layout {
  const costName = front.some((p) => p.prompt_tokens != null) ? "prompt tokens" : "USD per call";
  const known = front.filter((p) => costOf(p) !== null);
  const span = (values: number[]): [number, number] => {
    if (!values.length) return [0, 1];
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.abs(lo) * 0.1 || 0.5;
    return [lo - pad, hi + pad];
  };
  const xRange = span(known.map((p) => costOf(p) as number));
  const yRange = span(known.map((p) => p.score));
  const innerW = width - PAD.left - PAD.right;
  const innerH = height - PAD.top - PAD.bottom;
  const points = known
    .map((p) => {
      const cost = costOf(p) as number;
      return {
        id: p.candidate_id,
        cost,
        score: p.score,
        text: p.text,
        x: PAD.left + ((cost - xRange[0]) / (xRange[1] - xRange[0])) * innerW,
        y: PAD.top + (1 - (p.score - yRange[0]) / (yRange[1] - yRange[0])) * innerH,
      };
    })
    .sort((a, b) => a.cost - b.cost || b.score - a.score);
  return { costName, points, xRange, yRange };
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function label(v: number, name: Layout["costName"]): string {
  return name === "prompt tokens" ? String(Math.round(v)) : v.toPrecision(2);
}

/** The front as an SVG scatter, each point titled with its score, cost and prompt. */
export function paretoChart(front: ParetoPoint[], width = 420, height = 220): SVGElement {
  const layout = scatterLayout(front, width, height);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Pareto front: full-dev score against ${layout.costName}` });
  root.dataset.points = String(layout.points.length);
  const bottom = height - PAD.bottom;
  root.append(
    svg("line", { x1: PAD.left, y1: bottom, x2: width - PAD.right, y2: bottom, stroke: "#94a3b8" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom, stroke: "#94a3b8" }),
    svg("text", { x: (PAD.left + width - PAD.right) / 2, y: height - 4, "text-anchor": "middle",
      "font-size": 11 }, layout.costName),
    svg("text", { x: 12, y: (PAD.top + bottom) / 2, "text-anchor": "middle", "font-size": 11,
      transform: `rotate(-90 12 ${(PAD.top + bottom) / 2})` }, "full-dev score"),
    svg("text", { x: PAD.left, y: bottom + 14, "font-size": 10 }, label(layout.xRange[0], layout.costName)),
    svg("text", { x: width - PAD.right, y: bottom + 14, "font-size": 10, "text-anchor": "end" },
      label(layout.xRange[1], layout.costName)),
    svg("text", { x: PAD.left - 4, y: bottom, "font-size": 10, "text-anchor": "end" },
      layout.yRange[0].toFixed(2)),
    svg("text", { x: PAD.left - 4, y: PAD.top + 8, "font-size": 10, "text-anchor": "end" },
      layout.yRange[1].toFixed(2)),
  );
  if (layout.points.length > 1) {
    root.append(svg("polyline", { fill: "none", stroke: "#2563eb", "stroke-dasharray": "4 3",
      points: layout.points.map((p) => `${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ") }));
  }
  for (const p of layout.points) {
    const dot = svg("circle", { cx: p.x.toFixed(1), cy: p.y.toFixed(1), r: 5, fill: "#2563eb" });
    dot.dataset.candidate = p.id;
    dot.append(svg("title", {}, `score ${p.score.toFixed(3)} · ${label(p.cost, layout.costName)} `
      + `${layout.costName}\n${p.text}`));
    root.append(dot);
  }
  return root;
}
