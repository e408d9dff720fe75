// Line charts over generations (uPlot: small, fast, canvas-based, made for live series).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { generationSpan, integerTicks } from "./axis";

// the least room, in CSS pixels, between two labelled generations on the x-axis
const TICK_SPACE = 48;

export interface SeriesSpec {
  label: string;
  color: string;
  dash?: number[];
}

export const PALETTE = [
  "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
  "#7c3aed", "#b45309",
];

export class LineChart {
  private plot: uPlot;
  private observer: ResizeObserver;
  private span: [number, number] = [0, 1];

  constructor(
    readonly el: HTMLElement,
    series: SeriesSpec[],
    opts: { yLabel: string; height?: number } = { yLabel: "score" },
  ) {
    const height = opts.height ?? 260;
    this.plot = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height,
        // the x-axis spans the job's generations, whatever has been drawn so far
        scales: { x: { time: false, range: () => [...this.span] } },
        series: [
          { label: "generation", value: (_u, v) => (v === null ? "—" : String(v)) },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            dash: s.dash,
            spanGaps: true,
            points: { size: 6, fill: s.color },
            value: (_u: uPlot, v: number | null) => (v === null ? "—" : v.toFixed(3)),
          })),
        ],
        axes: [
          {
            label: "generation",
            splits: (u: uPlot, _axis: number, lo: number, hi: number) => {
              const ticks = integerTicks(lo, hi, u.bbox.width / devicePixelRatio / TICK_SPACE);
              // the generations labelled on the axis, for anyone (or any test) watching the page
              this.el.dataset.xTicks = ticks.join(",");
              return ticks;
            },
            values: (_u: uPlot, ticks: number[]) => ticks.map(String),
          },
          { label: opts.yLabel, size: 56 },
        ],
        legend: { live: true },
      },
      [[], ...series.map(() => [])],
      el,
    );
    // follow the container's width (the page is fluid)
    this.observer = new ResizeObserver(() => {
      const width = Math.max(320, el.clientWidth);
      if (Math.abs(width - this.plot.width) > 2) this.plot.setSize({ width, height });
    });
    this.observer.observe(el);
    this.el.dataset.points = "0";
  }

  /** ``x`` the generations; one array of values per series, ``null`` where it has none;
   * ``planned`` the job's last generation when known (the x-axis runs to it). */
  setData(x: number[], ys: (number | null)[][], planned: number | null = null): void {
    this.span = generationSpan(x, planned);
    this.el.dataset.xMin = String(this.span[0]);
    this.el.dataset.xMax = String(this.span[1]);
    this.plot.setData([x, ...ys] as uPlot.AlignedData);
    // how many generations are drawn, for anyone (or any test) watching the page
    this.el.dataset.points = String(x.length);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot.destroy();
  }
}
