// The generation axis of the score charts: it spans the whole job from the first generation, not
// only the generations seen so far, and is marked in whole generations.

const STEPS = [1, 2, 5];

/** From generation 0 (or the first seen, if earlier) to the planned last one, or further
 * when the job went past it; at least one generation wide, so that a single point has room. */
export function generationSpan(seen: readonly number[], planned: number | null): [number, number] {
  let lo = 0;
  let hi = planned !== null && planned > 0 ? Math.ceil(planned) : 0;
  for (const g of seen) {
    lo = Math.min(lo, Math.floor(g));
    hi = Math.max(hi, Math.ceil(g));
  }
  return [lo, Math.max(hi, lo + 1)];
}

/** Whole-number ticks over ``[lo, hi]``, a step of 1, 2, 5, 10, 20, 50… apart: the smallest
 * that gives at most ``most`` ticks. */
export function integerTicks(lo: number, hi: number, most: number): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return [];
  const room = Math.max(2, Math.floor(most));
  let step = 1;
  for (let scale = 1; ; scale *= 10) {
    const fits = STEPS.map((s) => s * scale).find((s) => Math.floor(hi / s) - Math.ceil(lo / s) + 1 <= room);
    if (fits !== undefined) {
      step = fits;
      break;
    }
  }
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) ticks.push(t);
  return ticks;
}
