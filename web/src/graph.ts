// A family tree drawn with cytoscape (pan, zoom, click), laid out by tree_layout.ts: parents
// above their children, each edge's operator in a box of its own between the layers, which the
// edge runs through (a label on the line itself would be covered by the nodes it joins).

import cytoscape from "cytoscape";

import { debounce } from "./dom";
import { LABEL_FAMILY, LABEL_FONT_PX, layoutTree, measureText, NODE_H, NODE_W, type TreeEdge,
  type TreeNode } from "./tree_layout";

export type { TreeEdge, TreeNode } from "./tree_layout";

const LINE = "#94a3b8";

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
    private readonly el: HTMLElement,
    nodes: TreeNode[],
    edges: TreeEdge[],
    onSelect: (id: string) => void,
  ) {
    const layout = layoutTree(nodes, edges, measureText());
    const scores = nodes.map((n) => n.score).filter((s): s is number => s !== null);
    const lo = Math.min(...scores);
    const hi = Math.max(...scores);
    const elements: cytoscape.ElementDefinition[] = nodes.map((n) => {
      const at = layout.nodes.get(n.id);
      return {
        group: "nodes",
        data: {
          id: n.id,
          label: `g${n.generation} · ${n.score === null ? "—" : n.score.toFixed(3)}\n${n.operator}`,
          color: scoreColor(n.score, lo, hi)[0],
          ink: scoreColor(n.score, lo, hi)[1],
        },
        position: { x: at?.x ?? 0, y: at?.y ?? 0 },
        classes: n.root ? "candidate root" : "candidate",
      };
    });
    layout.labels.forEach((label, i) => {
      // parent → bends → the label's box → bends → child, the arrow on the last leg only
      const chain = [label.source];
      const stop = (id: string, x: number, y: number, classes: string, data: Record<string, unknown> = {}): void => {
        elements.push({ group: "nodes", data: { id, ...data }, position: { x, y }, classes,
          selectable: false, grabbable: false });
        chain.push(id);
      };
      label.before.forEach((p, j) => stop(`bend:${i}:a${j}`, p.x, p.y, "bend"));
      stop(`label:${i}`, label.x, label.y, "edge-label",
        { label: label.text, w: label.width, h: label.height });
      label.after.forEach((p, j) => stop(`bend:${i}:b${j}`, p.x, p.y, "bend"));
      chain.push(label.target);
      for (let k = 1; k < chain.length; k++) {
        const classes = [
          k === chain.length - 1 ? "last" : "",
          chain[k - 1].startsWith("bend:") ? "from-bend" : "",
          chain[k].startsWith("bend:") ? "to-bend" : "",
        ];
        elements.push({
          group: "edges",
          data: { id: `edge:${i}:${k}`, source: chain[k - 1], target: chain[k] },
          classes: classes.filter(Boolean).join(" "),
          selectable: false,
        });
      }
    });

    this.cy = cytoscape({
      container: el,
      elements,
      layout: { name: "preset" },
      minZoom: 0.1,
      maxZoom: 2.5,
      autoungrabify: true,
      style: [
        {
          selector: "node.candidate",
          style: {
            shape: "round-rectangle",
            width: NODE_W,
            height: NODE_H,
            "background-color": "data(color)",
            "border-width": 1,
            "border-color": LINE,
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
        { selector: "node.candidate:selected", style: { "border-width": 3, "border-color": "#f59e0b" } },
        {
          selector: "node.edge-label",
          style: {
            shape: "round-rectangle",
            width: "data(w)",
            height: "data(h)",
            "background-color": "#ffffff",
            "border-width": 1,
            "border-color": "#e2e8f0",
            label: "data(label)",
            "text-valign": "center",
            "text-halign": "center",
            "font-size": LABEL_FONT_PX,
            "font-family": LABEL_FAMILY,
            "text-max-width": "1000px",
            color: "#475569",
            events: "no",
          },
        },
        { selector: "node.bend", style: { width: 1, height: 1, opacity: 0, events: "no" } },
        {
          selector: "edge",
          style: {
            width: 1.5,
            "line-color": LINE,
            "curve-style": "straight",
            events: "no",
          },
        },
        // legs meet at a bend's centre, so the line has no gap there
        { selector: "edge.from-bend", style: { "source-endpoint": "inside-to-node" } },
        { selector: "edge.to-bend", style: { "target-endpoint": "inside-to-node" } },
        {
          selector: "edge.last",
          style: { "target-arrow-color": LINE, "target-arrow-shape": "triangle" },
        },
      ],
    });
    this.cy.on("tap", "node.candidate", (event) => onSelect(event.target.id()));
    this.cy.fit(undefined, 16);
    // a small tree is not blown up to fill the canvas
    if (this.cy.zoom() > 1.2) {
      this.cy.zoom(1.2);
      this.cy.center();
    }
    this.cy.on("viewport", debounce(150, () => this.report()));
    this.report();
  }

  /** Where the edge labels and the candidates are drawn, in the container's pixels, for anyone
   * (or any test) watching the page: [left, top, right, bottom] of each. */
  private report(): void {
    const box = (e: cytoscape.NodeSingular): number[] => {
      const b = e.renderedBoundingBox({ includeLabels: true, includeOverlays: false });
      return [b.x1, b.y1, b.x2, b.y2].map((v) => Math.round(v * 10) / 10);
    };
    this.el.dataset.labelBoxes = JSON.stringify(this.cy.nodes(".edge-label").map(box));
    this.el.dataset.nodeBoxes = JSON.stringify(this.cy.nodes(".candidate").map(box));
    this.el.dataset.zoom = this.cy.zoom().toFixed(3);
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
