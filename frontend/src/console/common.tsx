// Small pieces shared by the ML console's tabs: URL state (tab and selections live in the
// query string, so that a step of a round can link to its run), status badges, errors.

import { useCallback, useId, type ReactNode } from "react";
import { Link, useSearchParams } from "react-router-dom";
import type { ApiError } from "../api";
import { errorMessages, humanize } from "./format";
import { isForbidden } from "./useLoad";

export type ConsoleTab = "rounds" | "runs" | "models" | "exports";
export type SelectionKey = "round" | "run" | "model" | "export";

export const TABS: { id: ConsoleTab; label: string }[] = [
  { id: "rounds", label: "Rounds" },
  { id: "runs", label: "Training runs" },
  { id: "models", label: "Models" },
  { id: "exports", label: "Exports" },
];

const TAB_OF: Record<SelectionKey, ConsoleTab> = { round: "rounds", run: "runs", model: "models", export: "exports" };

export const ML_ONLY_MESSAGE = "You need to be an ML engineer of this project to use the ML console.";

export function parseTab(value: string | null): ConsoleTab {
  return TABS.some((t) => t.id === value) ? (value as ConsoleTab) : "rounds";
}

/** "?tab=runs&run=12": a link within the console (same page, another tab/selection). */
export function consoleHref(key: SelectionKey, id?: number | null): string {
  const params = new URLSearchParams({ tab: TAB_OF[key] });
  if (id !== undefined && id !== null) params.set(key, String(id));
  return `?${params.toString()}`;
}

/** The id selected in the URL for `key` (null when none or not a positive integer), and a setter. */
export function useSelection(key: SelectionKey): [number | null, (id: number | null) => void] {
  const [params, setParams] = useSearchParams();
  const raw = Number(params.get(key));
  const selected = Number.isInteger(raw) && raw > 0 ? raw : null;
  const select = useCallback(
    (id: number | null) => {
      setParams((prev) => {
        const next = new URLSearchParams(prev);
        next.set("tab", TAB_OF[key]);
        if (id === null) next.delete(key);
        else next.set(key, String(id));
        return next;
      });
    },
    [key, setParams],
  );
  return [selected, select];
}

/** A link to an object shown in another tab, e.g. "Run #12". */
export function ObjectLink({ kind, id }: { kind: SelectionKey; id: number | null | undefined }) {
  if (id === null || id === undefined) return <span className="muted">—</span>;
  const label = { round: "Round", run: "Run", model: "Model", export: "Export" }[kind];
  return <Link to={consoleHref(kind, id)}>{`${label} #${id}`}</Link>;
}

/** A status word in a coloured pill (queued, running, succeeded, failed, done, …). */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-badge status-${status}`}>{status}</span>;
}

export function isActiveStatus(status: string): boolean {
  return status === "queued" || status === "running";
}

/** A failed load: the role message on 403, else the error with a retry button. */
export function LoadError({ error, onRetry }: { error: ApiError; onRetry(): void }) {
  if (isForbidden(error)) {
    return (
      <p className="error" role="alert">
        {ML_ONLY_MESSAGE}
      </p>
    );
  }
  return (
    <div>
      <p className="error" role="alert">
        {error.message}
      </p>
      <button type="button" className="button button-secondary" onClick={onRetry}>
        Try again
      </button>
    </div>
  );
}

export function Loading({ children }: { children: ReactNode }) {
  return (
    <p className="muted" role="status">
      {children}
    </p>
  );
}

/** Messages under one field of a form; give the field `aria-describedby={id}`. */
export function FieldError({ id, messages }: { id: string; messages: string[] | undefined }) {
  if (!messages || messages.length === 0) return null;
  return (
    <p id={id} className="field-error">
      {messages.join(" ")}
    </p>
  );
}

/** A failed submit: the server's message, then the field errors no field of the form shows. */
export function SubmitError({ error, shown }: { error: ApiError | null; shown: string[] }) {
  const titleId = useId();
  if (!error) return null;
  const fields = error.extra.fields;
  const rest =
    fields && typeof fields === "object" && !Array.isArray(fields)
      ? Object.entries(fields as Record<string, unknown>).filter(([key]) => !shown.includes(key))
      : [];
  return (
    <div className="error submit-error" role="alert" aria-labelledby={titleId}>
      <p id={titleId} className="submit-error-message">
        {error.message}
      </p>
      {rest.length > 0 && (
        <ul className="submit-error-fields">
          {rest.flatMap(([key, value]) =>
            errorMessages(value).map((message, i) => (
              <li key={`${key}-${i}`}>
                {key === "non_field_errors" ? message : `${humanize(key)}: ${message}`}
              </li>
            )),
          )}
        </ul>
      )}
    </div>
  );
}
