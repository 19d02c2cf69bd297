import { Fragment, useId, useState, type FormEvent, type ReactNode } from "react";
import { ApiError, type AnnotatorQuality, type Exclusion, type QualityThresholds } from "../api";
import { AnnotatorLink } from "../annotators/AnnotatorLink";
import { flagLabel, formatCount, formatPValue, formatPercent, formatSeconds } from "./format";

export type SortKey =
  | "username"
  | "judgments"
  | "consensus_agreement"
  | "gold_accuracy"
  | "left_share"
  | "position_p_value"
  | "median_seconds";

export type SortDirection = "ascending" | "descending";

export interface SortState {
  key: SortKey;
  direction: SortDirection;
}

interface Column {
  key: SortKey;
  label: string;
  numeric: boolean;
  /** Flags that mark this column's cell. */
  flags: string[];
  render(row: AnnotatorQuality): ReactNode;
}

const COLUMNS: Column[] = [
  { key: "judgments", label: "Judgments", numeric: true, flags: [], render: (a) => formatCount(a.judgments) },
  {
    key: "consensus_agreement",
    label: "Consensus agreement",
    numeric: true,
    flags: ["low_consensus_agreement"],
    render: (a) => formatPercent(a.consensus_agreement),
  },
  {
    key: "gold_accuracy",
    label: "Gold accuracy",
    numeric: true,
    flags: ["low_gold_accuracy"],
    render: (a) => (
      <>
        {formatPercent(a.gold_accuracy)}
        <span className="cell-note"> of {formatCount(a.gold_judgments)}</span>
      </>
    ),
  },
  { key: "left_share", label: "Left share", numeric: true, flags: ["position_bias"], render: (a) => formatPercent(a.left_share) },
  {
    key: "position_p_value",
    label: "p-value",
    numeric: true,
    flags: ["position_bias"],
    render: (a) => formatPValue(a.position_p_value),
  },
  {
    key: "median_seconds",
    label: "Median seconds",
    numeric: true,
    flags: ["too_fast"],
    render: (a) => formatSeconds(a.median_seconds),
  },
];

function compareValues(a: AnnotatorQuality, b: AnnotatorQuality, key: SortKey): number {
  if (key === "username") return a.username.localeCompare(b.username);
  return (a[key] as number) - (b[key] as number);
}

/** Sorted copy; missing values (null) always go last, ties keep the server's order. */
export function sortAnnotators(rows: AnnotatorQuality[], sort: SortState | null): AnnotatorQuality[] {
  if (!sort) return rows;
  const sign = sort.direction === "ascending" ? 1 : -1;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((x, y) => {
      const a = x.row[sort.key];
      const b = y.row[sort.key];
      const aMissing = a === null || (typeof a === "number" && !Number.isFinite(a));
      const bMissing = b === null || (typeof b === "number" && !Number.isFinite(b));
      if (aMissing || bMissing) return aMissing === bMissing ? x.index - y.index : aMissing ? 1 : -1;
      return sign * compareValues(x.row, y.row, sort.key) || x.index - y.index;
    })
    .map(({ row }) => row);
}

function SortHeader({
  column,
  sort,
  onSort,
  className,
}: {
  column: { key: SortKey; label: string };
  sort: SortState | null;
  onSort(key: SortKey): void;
  className?: string;
}) {
  const active = sort?.key === column.key;
  return (
    <th scope="col" className={className} aria-sort={active ? sort.direction : undefined}>
      <button type="button" className="sort-button" onClick={() => onSort(column.key)}>
        {column.label}
        <span className="sort-indicator" aria-hidden="true">
          {active ? (sort.direction === "ascending" ? "▲" : "▼") : "↕"}
        </span>
      </button>
    </th>
  );
}

interface ReasonFormProps {
  mode: "exclude" | "restore";
  username: string;
  onSubmit(reason: string): Promise<void>;
  onCancel(): void;
}

/** The inline "why?" form under a row; the reason is required. */
function ReasonForm({ mode, username, onSubmit, onCancel }: ReasonFormProps) {
  const inputId = useId();
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const verb = mode === "exclude" ? "excluding" : "restoring";

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = reason.trim();
    if (!trimmed) {
      setError("Please give a reason.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSubmit(trimmed);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      setBusy(false);
    }
  }

  return (
    <form className="reason-form" onSubmit={submit} aria-label={`${mode === "exclude" ? "Exclude" : "Restore"} ${username}`}>
      <label htmlFor={inputId}>
        Reason for {verb} {username}
      </label>
      <input
        id={inputId}
        value={reason}
        autoFocus
        maxLength={1000}
        onChange={(e) => setReason(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") onCancel();
        }}
      />
      <div className="reason-form-actions">
        <button type="submit" className="button button-small" disabled={busy || !reason.trim()} aria-busy={busy}>
          {mode === "exclude" ? "Confirm exclusion" : "Confirm restore"}
        </button>
        <button type="button" className="button button-secondary button-small" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export interface AnnotatorTableProps {
  annotators: AnnotatorQuality[];
  /** Active exclusions by annotator id; null while unknown (then the statistics' `excluded` is shown). */
  exclusions: Map<number, Exclusion> | null;
  onExclude(annotator: AnnotatorQuality, reason: string): Promise<void>;
  onRestore(exclusion: Exclusion, reason: string): Promise<void>;
}

/** Per-annotator statistics: sortable, flagged rows highlighted, exclude/restore per row. */
export function AnnotatorTable({ annotators, exclusions, onExclude, onRestore }: AnnotatorTableProps) {
  const [sort, setSort] = useState<SortState | null>(null);
  const [form, setForm] = useState<{ id: number; mode: "exclude" | "restore" } | null>(null);
  const [message, setMessage] = useState("");
  const rows = sortAnnotators(annotators, sort);
  const columnCount = COLUMNS.length + 3;

  function onSort(key: SortKey) {
    setSort((s) =>
      s?.key === key
        ? { key, direction: s.direction === "ascending" ? "descending" : "ascending" }
        : { key, direction: "ascending" },
    );
  }

  if (annotators.length === 0) return <p className="muted">No annotators have judged anything yet.</p>;

  return (
    <>
      <div className="table-wrap">
        <table className="table table-compact annotator-table" aria-label="Annotators">
          <thead>
            <tr>
              <SortHeader column={{ key: "username", label: "Username" }} sort={sort} onSort={onSort} />
              {COLUMNS.map((column) => (
                <SortHeader key={column.key} column={column} sort={sort} onSort={onSort} className="numeric" />
              ))}
              <th scope="col">Flags</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => {
              const exclusion = exclusions?.get(row.annotator_id) ?? null;
              const excluded = exclusions ? exclusion !== null : row.excluded;
              const flagged = row.flags.length > 0;
              const open = form?.id === row.annotator_id ? form : null;
              const className = [flagged && "annotator-flagged", excluded && "annotator-excluded"].filter(Boolean).join(" ");
              return (
                <Fragment key={row.annotator_id}>
                  <tr className={className || undefined} data-annotator-id={row.annotator_id}>
                    <th scope="row">
                      <AnnotatorLink annotatorId={row.annotator_id}>{row.username}</AnnotatorLink>
                      {excluded && <span className="badge badge-excluded">Excluded</span>}
                    </th>
                    {COLUMNS.map((column) => (
                      <td
                        key={column.key}
                        className={column.flags.some((f) => row.flags.includes(f)) ? "numeric cell-flagged" : "numeric"}
                      >
                        {column.render(row)}
                      </td>
                    ))}
                    <td>
                      {flagged ? (
                        <ul className="flag-list">
                          {row.flags.map((flag) => (
                            <li key={flag} className={`flag flag-${flag}`}>
                              {flagLabel(flag)}
                            </li>
                          ))}
                        </ul>
                      ) : (
                        <span className="muted">—</span>
                      )}
                    </td>
                    <td className="actions">
                      {excluded ? (
                        <button
                          type="button"
                          className="button button-secondary button-small"
                          aria-expanded={open?.mode === "restore"}
                          disabled={!exclusion}
                          title={exclusion ? undefined : "Loading the exclusion…"}
                          onClick={() => setForm(open ? null : { id: row.annotator_id, mode: "restore" })}
                        >
                          Restore
                        </button>
                      ) : (
                        <button
                          type="button"
                          className="button button-secondary button-small"
                          aria-expanded={open?.mode === "exclude"}
                          onClick={() => setForm(open ? null : { id: row.annotator_id, mode: "exclude" })}
                        >
                          Exclude
                        </button>
                      )}
                    </td>
                  </tr>
                  {open && (
                    <tr className="reason-row">
                      <td colSpan={columnCount}>
                        <ReasonForm
                          mode={open.mode}
                          username={row.username}
                          onCancel={() => setForm(null)}
                          onSubmit={async (reason) => {
                            if (open.mode === "exclude") {
                              await onExclude(row, reason);
                              setMessage(`${row.username} is excluded. Recompute to leave their judgments out of the statistics.`);
                            } else {
                              if (!exclusion) return;
                              await onRestore(exclusion, reason);
                              setMessage(`${row.username} is restored. Recompute to count their judgments again.`);
                            }
                            setForm(null);
                          }}
                        />
                      </td>
                    </tr>
                  )}
                </Fragment>
              );
            })}
          </tbody>
        </table>
      </div>
      <p className="muted table-status" role="status">
        {message}
      </p>
    </>
  );
}

/** What makes an annotator flagged, from the server's thresholds. */
export function ThresholdLegend({ thresholds }: { thresholds: QualityThresholds }) {
  return (
    <div className="threshold-legend">
      <span className="threshold-legend-title">Flagged when</span>
      <dl>
        <div>
          <dt className="flag flag-legend">{flagLabel("low_gold_accuracy")}</dt>
          <dd>gold accuracy below {formatPercent(thresholds.min_gold_accuracy)}</dd>
        </div>
        <div>
          <dt className="flag flag-legend">{flagLabel("low_consensus_agreement")}</dt>
          <dd>consensus agreement below {formatPercent(thresholds.min_consensus_agreement)}</dd>
        </div>
        <div>
          <dt className="flag flag-legend">{flagLabel("too_fast")}</dt>
          <dd>median time under {formatSeconds(thresholds.min_median_seconds)}</dd>
        </div>
        <div>
          <dt className="flag flag-legend">{flagLabel("position_bias")}</dt>
          <dd>left-share binomial test p below {formatPValue(thresholds.max_position_p_value)}</dd>
        </div>
      </dl>
    </div>
  );
}
