/** Summary statistics for the rounds of one figure, and percentiles of latency samples. */

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** How many rounds produced a value. */
  n: number;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return percentileSorted(s, p);
}

export function percentileSorted(s: Float64Array, p: number): number {
  if (s.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function spread(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  // For an even count, the mean of the two middle values.
  const s = [...ok].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const med = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: med, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}
