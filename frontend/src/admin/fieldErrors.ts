import { ApiError } from "../api";

/** The per-field messages of a 400 (`extra.fields`), as one string per field. */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const fields = error.extra.fields;
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields as Record<string, unknown>)) {
    out[key] = Array.isArray(value) ? value.map(String).join(" ") : String(value);
  }
  return out;
}
