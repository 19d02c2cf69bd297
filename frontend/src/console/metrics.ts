// Which metrics of a run to plot, and their series.

import type { MetricRow } from "./types";

export const MAX_CHARTS = 8;

/** Shown first, in this order: a key belongs to the first group among its words ("eval_accuracy" → accuracy). */
const PRIORITY = ["reward", "kl", "loss", "accuracy"];
/** Bookkeeping, shown last. */
const LAST = new Set(["epoch", "step", "learning_rate", "lr", "grad_norm", "total_flos", "runtime"]);

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function words(key: string): string[] {
  return key.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
}

function rank(key: string): number {
  const lower = key.toLowerCase();
  if (LAST.has(lower) || lower.endsWith("_runtime") || lower.endsWith("per_second")) return PRIORITY.length + 1;
  const exact = PRIORITY.indexOf(lower);
  if (exact !== -1) return exact;
  const parts = words(key);
  const group = PRIORITY.findIndex((p) => parts.includes(p));
  return group === -1 ? PRIORITY.length : group + 0.5;
}

/**
 * The metric keys with at least one numeric value, reward/kl/loss/accuracy first (an exact
 * name before its relatives), then the rest in order of appearance; at most `max`.
 */
export function pickMetricKeys(rows: MetricRow[], max = MAX_CHARTS): string[] {
  const order = new Map<string, number>();
  for (const row of rows) {
    for (const [key, value] of Object.entries(row.values ?? {})) {
      if (isNumber(value) && !order.has(key)) order.set(key, order.size);
    }
  }
  return [...order.keys()]
    .sort((a, b) => rank(a) - rank(b) || order.get(a)! - order.get(b)!)
    .slice(0, max);
}

/** [step, value] for every row with a numeric `key`, by step. */
export function metricSeries(rows: MetricRow[], key: string): [number, number][] {
  const points: [number, number][] = [];
  for (const row of rows) {
    const value = row.values?.[key];
    if (isNumber(value) && isNumber(row.step)) points.push([row.step, value]);
  }
  return points.sort((a, b) => a[0] - b[0]);
}

/** Appends rows of later steps (ignores rows at or before the last step already held). */
export function appendRows(rows: MetricRow[], more: MetricRow[]): MetricRow[] {
  const last = lastStep(rows);
  const fresh = last === null ? more : more.filter((row) => row.step > last);
  return fresh.length > 0 ? [...rows, ...fresh] : rows;
}

export function lastStep(rows: MetricRow[]): number | null {
  let last: number | null = null;
  for (const row of rows) if (isNumber(row.step) && (last === null || row.step > last)) last = row.step;
  return last;
}

/** At most `max` points, evenly picked, always keeping the first and the last. */
export function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const result: T[] = [];
  const stride = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i += 1) result.push(points[Math.round(i * stride)]!);
  return result;
}
