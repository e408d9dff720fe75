// A family tree drawn with cytoscape (pan, zoom, click), laid out by dagre in layers: parents
// above their children, a child as many layers below a parent as generations apart.

import dagre from "@dagrejs/dagre";
import cytoscape from "cytoscape";

export interface TreeNode {
  id: string;
  generation: number;
  operator: string;
  score: number | null;
  root?: boolean;
}

export interface TreeEdge {
  source: string;
  target: string;
  operator: string;
}

const NODE_W = 156;
const NODE_H = 38;

/** Fill and text colours of a node: pale to deep blue, the better the darker. */
export function scoreColor(score: number | null, lo: number, hi: number): [string, string] {
  if (score === null) return ["#e5e7eb", "#0f172a"];
  const t = hi > lo ? (score - lo) / (hi - lo) : 1;
  const light = 90 - Math.round(t * 48);
  return [`hsl(217, 80%, ${light}%)`, light < 62 ? "#ffffff" : "#0f172a"];
}

export class FamilyTree {
  private cy: cytoscape.Core;

  constructor(
    el: HTMLElement,
    nodes: TreeNode[],
    edges: TreeEdge[],
    onSelect: (id: string) => void,
  ) {
    const layout = new dagre.graphlib.Graph();
    layout.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 56, marginx: 12, marginy: 12 });
    layout.setDefaultEdgeLabel(() => ({}));
    const byId = new Map(nodes.map((n) => [n.id, n]));
    for (const n of nodes) layout.setNode(n.id, { width: NODE_W, height: NODE_H });
    for (const e of edges) {
      const gap = (byId.get(e.target)?.generation ?? 1) - (byId.get(e.source)?.generation ?? 0);
      // one layer per generation: an edge spans as many layers as generations it skips
      layout.setEdge(e.source, e.target, { minlen: Math.max(1, gap) });
    }
    dagre.layout(layout);

    const scores = nodes.map((n) => n.score).filter((s): s is number => s !== null);
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    this.cy = cytoscape({
      container: el,
      elements: [
        ...nodes.map((n) => {
          const at = layout.node(n.id);
          return {
            group: "nodes" as const,
            data: {
              id: n.id,
              label: `g${n.generation} · ${n.score === null ? "—" : n.score.toFixed(3)}\n${n.operator}`,
              color: scoreColor(n.score, lo, hi)[0],
              ink: scoreColor(n.score, lo, hi)[1],
            },
            position: { x: at.x ?? 0, y: at.y ?? 0 },
            classes: n.root ? "root" : "",
          };
        }),
        ...edges.map((e) => ({
          group: "edges" as const,
          data: { id: `${e.source}>${e.target}`, source: e.source, target: e.target, label: e.operator },
        })),
      ],
      layout: { name: "preset" },
      minZoom: 0.1,
      maxZoom: 2.5,
      autoungrabify: true,
      style: [
        {
          selector: "node",
          style: {
            shape: "round-rectangle",
            width: NODE_W,
            height: NODE_H,
            "background-color": "data(color)",
            "border-width": 1,
            "border-color": "#94a3b8",
            label: "data(label)",
            "text-wrap": "wrap",
            "text-valign": "center",
            "text-halign": "center",
            "font-size": 11,
            "text-max-width": `${NODE_W - 8}px`,
            color: "data(ink)",
          },
        },
        { selector: "node.root", style: { "border-width": 3, "border-color": "#0f172a" } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#f59e0b" } },
        {
          selector: "edge",
          style: {
            width: 1.5,
            "line-color": "#94a3b8",
            "target-arrow-color": "#94a3b8",
            "target-arrow-shape": "triangle",
            "curve-style": "bezier",
            label: "data(label)",
            "font-size": 9,
            color: "#475569",
            "text-rotation": "autorotate",
            "text-background-color": "#ffffff",
            "text-background-opacity": 0.85,
            "text-background-padding": "1px",
          },
        },
      ],
    });
    this.cy.on("tap", "node", (event) => onSelect(event.target.id()));
    this.cy.fit(undefined, 16);
    // a small tree is not blown up to fill the canvas
    if (this.cy.zoom() > 1.2) {
      this.cy.zoom(1.2);
      this.cy.center();
    }
  }

  select(id: string): void {
    this.cy.$(":selected").unselect();
    const node = this.cy.getElementById(id);
    node.select();
  }

  destroy(): void {
    this.cy.destroy();
  }
}
