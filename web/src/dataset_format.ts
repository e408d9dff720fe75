// What a data-set job's per-round counts say, in words: the table cells and the line above it.

import type { DataSetRound } from "./api";

/** "no_gain ×3, empty ×1": the reasons, most frequent first (ties by name); "—" for none. */
export function reasonsText(reasons: Record<string, number>): string {
  const parts = Object.entries(reasons)
    .filter(([, n]) => n > 0)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, n]) => `${reason.replaceAll("_", " ")} ×${n}`);
  return parts.length ? parts.join(", ") : "—";
}

/** The whole job in one sentence: items kept (seeds and evolved) and evolutions dropped. */
export function roundsSummary(rounds: DataSetRound[]): string {
  const seeds = rounds.find((r) => r.round === 0)?.kept ?? 0;
  const evolved = rounds.filter((r) => r.round > 0);
  const kept = evolved.reduce((sum, r) => sum + r.kept, 0);
  const tried = evolved.reduce((sum, r) => sum + r.kept + r.eliminated, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return `${plural(seeds + kept, "item")}: ${plural(seeds, "seed")} and ${kept} of ${plural(tried, "evolution")} `
    + `kept over ${plural(evolved.length, "round")}`;
}
