// Formatting helpers of the ML console (on top of the quality dashboard's).

import type { ApiError } from "../api";
import { formatDateTime, formatPercent, MISSING } from "../quality/format";
import type { WinRate } from "./types";

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** "512 B", "1.5 KB", "3.2 GB" (powers of 1024); "—" when unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  if (!isNumber(bytes) || bytes < 0) return MISSING;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** A metric value: up to 4 significant digits, "1.2e-5" for tiny ones; "—" for non-numbers. */
export function formatMetric(value: unknown): string {
  if (!isNumber(value)) return MISSING;
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** A date-time for a table cell; "—" for null. */
export function formatWhen(iso: string | null | undefined): string {
  return iso ? formatDateTime(iso) : MISSING;
}

/** "62% [55%, 69%]"; "62%" without an interval; "—" before any judgment. */
export function formatWinRate(rate: WinRate | null | undefined): string {
  if (!rate || !isNumber(rate.win_rate)) return MISSING;
  const value = formatPercent(rate.win_rate);
  if (!isNumber(rate.ci_low) || !isNumber(rate.ci_high)) return value;
  return `${value} [${formatPercent(rate.ci_low)}, ${formatPercent(rate.ci_high)}]`;
}

/** "2 min 5 s" between two times; null when either is missing. */
export function formatDuration(start: string | null | undefined, end: string | null | undefined): string | null {
  if (!start || !end) return null;
  const ms = Date.parse(end) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return null;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** "eval_accuracy" → "Eval accuracy". */
export function humanize(key: string): string {
  const text = key.replace(/[_/]+/g, " ").trim();
  return text ? text[0]!.toUpperCase() + text.slice(1) : key;
}

/** A value of a step's detail: numbers, dates, booleans and JSON, readable. */
export function formatDetailValue(value: unknown): string {
  if (value === null || value === undefined) return MISSING;
  if (typeof value === "number") return formatMetric(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "string") {
    return /^\d{4}-\d{2}-\d{2}T/.test(value) ? formatDateTime(value) : value;
  }
  return JSON.stringify(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every message in a field's error value (a string, a list, or nested `{field: …}`). */
export function errorMessages(value: unknown, prefix = ""): string[] {
  if (value === null || value === undefined) return [];
  if (typeof value === "string") return [prefix + value];
  if (Array.isArray(value)) return value.flatMap((v) => errorMessages(v, prefix));
  if (isRecord(value)) {
    return Object.entries(value).flatMap(([key, v]) =>
      errorMessages(v, key === "fields" || key === "non_field_errors" ? prefix : `${prefix}${key}: `),
    );
  }
  return [prefix + String(value)];
}

/**
 * The field errors of a 400 (`extra.fields`), as messages per field. Keys in `unwrap`
 * (e.g. "config") whose value is an object are spread into the top level too.
 */
export function fieldErrors(error: ApiError | null, unwrap: string[] = []): Record<string, string[]> {
  const fields = error?.extra.fields;
  if (!isRecord(fields)) return {};
  const result: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (unwrap.includes(key) && isRecord(value)) {
      const inner = isRecord(value.fields) ? value.fields : value;
      for (const [innerKey, innerValue] of Object.entries(inner)) {
        result[innerKey] = [...(result[innerKey] ?? []), ...errorMessages(innerValue)];
      }
    } else {
      result[key] = [...(result[key] ?? []), ...errorMessages(value)];
    }
  }
  return result;
}

/** "accelerate (num_processes 2, config zero2)": the launcher and its options, if any. */
export function describeLauncher(run: { launcher: string; launcher_options: Record<string, unknown> | null }): string {
  const options = Object.entries(run.launcher_options ?? {}).map(([key, value]) => `${key} ${String(value)}`);
  return options.length ? `${run.launcher} (${options.join(", ")})` : run.launcher;
}
