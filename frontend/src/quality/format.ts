// Formatting and small numeric helpers for the quality dashboard. Every formatter takes
// null (and NaN/Infinity) and returns a readable placeholder, never "NaN".

import type { Alpha } from "../api";

export const NOT_ENOUGH_DATA = "not enough data";
export const MISSING = "—";

function isNumber(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Fixed decimals, without a "-0.00". */
export function formatFixed(value: number | null | undefined, digits = 2): string {
  if (!isNumber(value)) return MISSING;
  const text = value.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}

/** "0.62 [0.58, 0.66]"; "0.62" without a CI; "not enough data" when alpha is undefined. */
export function formatAlpha(alpha: Alpha | null | undefined): string {
  if (!alpha || !isNumber(alpha.value)) return NOT_ENOUGH_DATA;
  const value = formatFixed(alpha.value);
  if (!isNumber(alpha.low) || !isNumber(alpha.high)) return value;
  return `${value} [${formatFixed(alpha.low)}, ${formatFixed(alpha.high)}]`;
}

/** Just the value ("0.62"), or "not enough data". */
export function formatAlphaValue(alpha: Alpha | null | undefined): string {
  return alpha && isNumber(alpha.value) ? formatFixed(alpha.value) : NOT_ENOUGH_DATA;
}

/** A share 0…1 as a percentage with at most one decimal: 0.625 → "62.5%", 0.62 → "62%". */
export function formatPercent(share: number | null | undefined): string {
  if (!isNumber(share)) return MISSING;
  const rounded = Math.round(share * 1000) / 10;
  return `${formatFixed(rounded, Number.isInteger(rounded) ? 0 : 1)}%`;
}

/** "4.2 s", "12 s", "2.5 min"; "—" for null. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (!isNumber(seconds)) return MISSING;
  if (seconds < 10) return `${formatFixed(seconds, 1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  return `${formatFixed(seconds / 60, 1)} min`;
}

/** "< 0.001", "0.042", "0.5"; "—" for null. */
export function formatPValue(p: number | null | undefined): string {
  if (!isNumber(p)) return MISSING;
  if (p < 0.001) return "< 0.001";
  return String(Number(p.toPrecision(2)));
}

export function formatCount(n: number | null | undefined): string {
  if (!isNumber(n)) return MISSING;
  return n.toLocaleString("en-US");
}

const RELATIVE_UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
];

const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "just now", "5 minutes ago", "yesterday", "3 weeks ago"; "at an unknown time" when unparsable. */
export function formatRelativeTime(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return "at an unknown time";
  const seconds = Math.round((then - now) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of RELATIVE_UNITS) {
    if (Math.abs(seconds) >= size) return relativeFormat.format(Math.round(seconds / size), unit);
  }
  return relativeFormat.format(seconds < 0 ? -1 : 1, "minute");
}

/** A full local date and time, e.g. for a title attribute; the input when unparsable. */
export function formatDateTime(iso: string): string {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return iso;
  return new Date(then).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

/** Parses "YYYY-MM-DD" as a UTC date; NaN when invalid. */
function parseDay(day: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? Date.parse(`${day}T00:00:00Z`) : Number.NaN;
}

/** "YYYY-MM-DD" → "3 Mar"; the input when it is not a date. */
export function formatDay(day: string): string {
  const time = parseDay(day);
  if (!Number.isFinite(time)) return day;
  return new Date(time).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" });
}

const DAY_MS = 24 * 3600 * 1000;
const MAX_FILLED_DAYS = 731;

/**
 * Sorts the days and fills the gaps between the first and the last with zero, so that a
 * bar chart has a true time axis. Leaves the data alone when a day is invalid or the span
 * is longer than two years.
 */
export function fillDays<T extends { day: string; judgments: number }>(days: T[]): { day: string; judgments: number }[] {
  const sorted = [...days].sort((a, b) => a.day.localeCompare(b.day));
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (!first || !last) return [];
  const start = parseDay(first.day);
  const end = parseDay(last.day);
  if (!sorted.every((d) => Number.isFinite(parseDay(d.day))) || (end - start) / DAY_MS > MAX_FILLED_DAYS) {
    return sorted.map(({ day, judgments }) => ({ day, judgments }));
  }
  const byDay = new Map<string, number>();
  for (const d of sorted) byDay.set(d.day, (byDay.get(d.day) ?? 0) + d.judgments);
  const filled: { day: string; judgments: number }[] = [];
  for (let t = start; t <= end; t += DAY_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    filled.push({ day, judgments: byDay.get(day) ?? 0 });
  }
  return filled;
}

export const FLAG_LABELS: Record<string, string> = {
  low_gold_accuracy: "Low gold accuracy",
  low_consensus_agreement: "Low agreement",
  too_fast: "Too fast",
  position_bias: "Position bias",
};

/** A readable label for an annotator flag; unknown flags are shown with spaces for underscores. */
export function flagLabel(flag: string): string {
  return FLAG_LABELS[flag] ?? flag.replace(/_/g, " ");
}

type Rgb = [number, number, number];

// ColorBrewer RdBu (5 classes): red for disagreement, white around 0, blue for agreement.
const KAPPA_STOPS: [number, Rgb][] = [
  [-1, [178, 24, 43]],
  [-0.5, [239, 138, 98]],
  [0, [247, 247, 247]],
  [0.5, [103, 169, 207]],
  [1, [33, 102, 172]],
];
export const KAPPA_NULL_COLOR = "rgb(208, 212, 218)";

/** Diverging colour for a kappa in −1…1 (clamped); grey for null. */
export function kappaColor(kappa: number | null | undefined): string {
  if (!isNumber(kappa)) return KAPPA_NULL_COLOR;
  const k = Math.max(-1, Math.min(1, kappa));
  for (let i = 1; i < KAPPA_STOPS.length; i += 1) {
    const [x1, c1] = KAPPA_STOPS[i]!;
    const [x0, c0] = KAPPA_STOPS[i - 1]!;
    if (k <= x1) {
      const t = (k - x0) / (x1 - x0);
      const rgb = c0.map((c, j) => Math.round(c + (c1[j]! - c) * t));
      return `rgb(${rgb.join(", ")})`;
    }
  }
  return `rgb(${KAPPA_STOPS[KAPPA_STOPS.length - 1]![1].join(", ")})`;
}

/** Dark text on light cells, white on strong colours. */
export function kappaTextColor(kappa: number | null | undefined): string {
  return isNumber(kappa) && Math.abs(kappa) > 0.6 ? "#ffffff" : "#1d2330";
}

/**
 * Evenly spaced ticks from 0 to a "nice" bound at or above `value`, with a step of
 * 1, 2, 2.5 or 5 × 10^k (at least 1 for counts, with `integer`).
 */
export function niceTicks(value: number, count = 4, integer = false): number[] {
  if (!isNumber(value) || value <= 0) return [0, 1];
  const raw = value / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const multipliers = integer && magnitude < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = multipliers.map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  if (integer) step = Math.max(1, Math.ceil(step));
  const ticks: number[] = [];
  for (let t = 0; t < value + step - 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** Every n-th index so that at most `max` labels are shown (always the first). */
export function labelStride(length: number, max: number): number {
  return Math.max(1, Math.ceil(length / Math.max(1, max)));
}
