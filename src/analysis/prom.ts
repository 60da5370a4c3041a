/**
 * Just enough of the Prometheus text exposition format (v0.0.4) to compare two scrapes of a model
 * server: samples with labels, counter deltas, and histogram deltas turned into quantiles and bins.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;

export function parsePromText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const lm of m[2].matchAll(LABEL)) {
        labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      }
    }
    const value = parseValue(m[3]!);
    if (value === undefined) continue;
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

function parseValue(s: string): number | undefined {
  if (s === "+Inf") return Number.POSITIVE_INFINITY;
  if (s === "-Inf") return Number.NEGATIVE_INFINITY;
  const v = Number(s);
  return Number.isNaN(v) && s !== "NaN" ? undefined : v;
}

export type LabelFilter = (labels: Record<string, string>) => boolean;

/** Sum of a metric's samples (optionally filtered by labels). */
export function sumOf(samples: Sample[], name: string, filter: LabelFilter = () => true): number {
  let total = 0;
  for (const s of samples) if (s.name === name && filter(s.labels)) total += s.value;
  return total;
}

/** Sum of a metric grouped by one label. */
export function sumBy(samples: Sample[], name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = s.labels[label] ?? "";
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** Difference end − start per key; a counter that went down (process restart) counts from zero. */
export function deltaMap(start: Map<string, number>, end: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of end) {
    const before = start.get(k) ?? 0;
    out.set(k, v >= before ? v - before : v);
  }
  return out;
}

export function counterDelta(start: number, end: number): number {
  return end >= start ? end - start : end;
}

/** Cumulative bucket counts of a histogram, summed over all other labels, keyed by upper bound. */
export function histogramBuckets(
  samples: Sample[],
  name: string,
  filter: LabelFilter = () => true,
): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || !filter(s.labels)) continue;
    const le = parseValue(s.labels.le ?? "");
    if (le === undefined) continue;
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}

/** Bucket deltas over an interval, sorted by bound (cumulative counts). */
export function histogramDelta(
  start: Map<number, number>,
  end: Map<number, number>,
): Array<[number, number]> {
  const bounds = [...end.keys()].sort((a, b) => a - b);
  const restarted = bounds.some((b) => (end.get(b) ?? 0) < (start.get(b) ?? 0));
  return bounds.map((b) => [b, restarted ? (end.get(b) ?? 0) : (end.get(b) ?? 0) - (start.get(b) ?? 0)]);
}

/**
 * Quantile from cumulative buckets, interpolated linearly inside the bucket (PromQL's
 * histogram_quantile). Returns undefined with no observations; the highest finite bound when the
 * quantile falls in +Inf.
 */
export function histogramQuantile(q: number, cumulative: Array<[number, number]>): number | undefined {
  const total = cumulative.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of cumulative) {
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return prevBound;
      if (count === prevCount) return bound;
      return prevBound + (bound - prevBound) * ((rank - prevCount) / (count - prevCount));
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

/** Per-bin counts from cumulative buckets (first bin starts at 0); +Inf folds into the last bin. */
export function binsFromCumulative(cumulative: Array<[number, number]>): number[] {
  const bins: number[] = [];
  let prev = 0;
  for (const [bound, count] of cumulative) {
    const n = Math.max(0, count - prev);
    if (bound === Number.POSITIVE_INFINITY) {
      if (bins.length > 0) bins[bins.length - 1]! += n;
      else bins.push(n);
    } else bins.push(n);
    prev = count;
  }
  return bins;
}
