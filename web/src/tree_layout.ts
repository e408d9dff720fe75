// Where the family tree's nodes and edge labels go, laid out by dagre in layers: parents above
// their children, a child as many layers below a parent as generations apart. Each edge's label
// (the operator that made the child) is measured and laid out as a box of its own between the
// layers, so no label lies under a node, under another label, or outside the drawing.

import dagre from "@dagrejs/dagre";

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

export interface Box {
  x: number; // centre
  y: number;
  width: number;
  height: number;
}

export interface PlacedLabel extends Box {
  source: string;
  target: string;
  text: string;
  /** The edge's bends (dagre's route around other nodes), parent side and child side. */
  before: { x: number; y: number }[];
  after: { x: number; y: number }[];
}

export interface TreeLayout {
  nodes: Map<string, Box>;
  labels: PlacedLabel[];
  width: number;
  height: number;
}

// what dagre leaves on an edge with a label: its route and the label's centre and size
interface PlacedEdge {
  points: { x: number; y: number }[];
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Text width in CSS pixels at the labels' font. */
export type Measure = (text: string) => number;

export const NODE_W = 156;
export const NODE_H = 38;
export const LABEL_FONT_PX = 10;
export const LABEL_FAMILY = '"Helvetica Neue", Helvetica, Arial, sans-serif';
export const LABEL_FONT = `${LABEL_FONT_PX}px ${LABEL_FAMILY}`;
// room around a label's text: its white backing, and a margin against the lines beside it
export const LABEL_PAD_X = 4;
export const LABEL_PAD_Y = 2;
const LABEL_H = Math.ceil(LABEL_FONT_PX * 1.3) + 2 * LABEL_PAD_Y;

/** Measures with a canvas in the browser; elsewhere (tests) a generous estimate. */
export function measureText(): Measure {
  const context = typeof document === "undefined" ? null : document.createElement("canvas").getContext("2d");
  if (!context) return (text) => text.length * LABEL_FONT_PX * 0.62;
  context.font = LABEL_FONT;
  return (text) => context.measureText(text).width;
}

export function layoutTree(nodes: TreeNode[], edges: TreeEdge[], measure: Measure): TreeLayout {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "TB", nodesep: 24, edgesep: 12, ranksep: 40, marginx: 12, marginy: 12 });
  graph.setDefaultEdgeLabel(() => ({}));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const n of nodes) graph.setNode(n.id, { width: NODE_W, height: NODE_H });
  const drawn: TreeEdge[] = [];
  const seen = new Set<string>();
  for (const e of edges) {
    const key = `${e.source}>${e.target}`;
    // one line per parent and child (a parent used twice is still one parent)
    if (seen.has(key) || !byId.has(e.source) || !byId.has(e.target) || e.source === e.target) continue;
    seen.add(key);
    drawn.push(e);
    const gap = (byId.get(e.target)?.generation ?? 1) - (byId.get(e.source)?.generation ?? 0);
    graph.setEdge(e.source, e.target, {
      // one layer per generation: an edge spans as many layers as generations it skips
      minlen: Math.max(1, gap),
      width: Math.ceil(measure(e.operator)) + 2 * LABEL_PAD_X,
      height: LABEL_H,
      labelpos: "c",
    });
  }
  dagre.layout(graph);

  const placed = new Map<string, Box>();
  for (const n of nodes) {
    const at = graph.node(n.id);
    placed.set(n.id, { x: at.x ?? 0, y: at.y ?? 0, width: NODE_W, height: NODE_H });
  }
  const labels = drawn.map((e): PlacedLabel => {
    const at = graph.edge(e.source, e.target) as PlacedEdge;
    // the route's inner points, less the label's own: bends on either side of it
    const inner = at.points.slice(1, -1).filter((p) => Math.abs(p.y - at.y) > 0.5);
    return {
      source: e.source,
      target: e.target,
      text: e.operator,
      x: at.x,
      y: at.y,
      width: at.width,
      height: at.height,
      before: inner.filter((p) => p.y < at.y),
      after: inner.filter((p) => p.y > at.y),
    };
  });
  const size = graph.graph();
  return { nodes: placed, labels, width: size.width ?? 0, height: size.height ?? 0 };
}

/** Whether two boxes share any area. */
export function overlaps(a: Box, b: Box): boolean {
  return Math.abs(a.x - b.x) * 2 < a.width + b.width && Math.abs(a.y - b.y) * 2 < a.height + b.height;
}
