import { useCallback, useId, useMemo, useState, type FormEvent } from "react";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { formatCount } from "../quality/format";
import { FieldError, isActiveStatus, LoadError, Loading, SubmitError, StatusBadge, useSelection } from "./common";
import { consoleApi, exportFileUrl } from "./consoleApi";
import { fieldErrors, formatBytes, formatWhen } from "./format";
import {
  EXPORT_FORMATS,
  type Consensus,
  type DatasetExport,
  type ExportFile,
  type ExportFormat,
  type ExportRequest,
  type TiePolicy,
} from "./types";
import { POLL_INTERVAL_MS, usePolled } from "./useLoad";

const FORMAT_LABELS: Record<ExportFormat, string> = {
  jsonl: "JSONL",
  parquet: "Parquet",
  hf: "Hugging Face dataset (hf)",
};

const FORM_FIELDS = ["test_fraction", "min_votes", "consensus", "ties", "formats", "judged_after"];

function fileNote(file: ExportFile): string {
  const parts: string[] = [];
  if (typeof file.rows === "number") parts.push(`${formatCount(file.rows)} rows`);
  if (typeof file.bytes === "number") parts.push(formatBytes(file.bytes));
  return parts.join(", ");
}

function ExportFiles({ projectId, exp }: { projectId: number; exp: DatasetExport }) {
  const files = Object.entries(exp.files ?? {});
  if (files.length === 0) return <span className="muted">—</span>;
  return (
    <ul className="export-files" aria-label={`Files of export ${exp.id}`}>
      {files.map(([name, file]) => {
        const note = fileNote(file);
        return (
          <li key={name}>
            {name === "hf" || exp.status !== "succeeded" ? (
              <span title="A folder on the server (datasets.load_from_disk)">{name}</span>
            ) : (
              <a href={exportFileUrl(projectId, exp.id, name)} download={name}>
                {name}
              </a>
            )}
            {note && <span className="cell-note"> {note}</span>}
          </li>
        );
      })}
    </ul>
  );
}

function ExportTable({ projectId, exports, selectedId }: { projectId: number; exports: DatasetExport[]; selectedId: number | null }) {
  return (
    <div className="table-wrap">
      <table className="table table-compact console-table" aria-label="Dataset exports">
        <thead>
          <tr>
            <th scope="col">Export</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col" className="numeric">
              Train rows
            </th>
            <th scope="col" className="numeric">
              Test rows
            </th>
            <th scope="col">Files</th>
          </tr>
        </thead>
        <tbody>
          {exports.map((exp) => (
            <tr
              key={exp.id}
              className={exp.id === selectedId ? "row-selected" : undefined}
              data-testid={`export-row-${exp.id}`}
              aria-current={exp.id === selectedId ? "true" : undefined}
            >
              <th scope="row">Export #{exp.id}</th>
              <td>
                <StatusBadge status={exp.status} />
                {exp.error && <p className="cell-error">{exp.error}</p>}
              </td>
              <td>
                {formatWhen(exp.created_at)}
                {exp.created_by && <span className="cell-note"> by {exp.created_by}</span>}
              </td>
              <td className="numeric">{formatCount(exp.train_rows)}</td>
              <td className="numeric">
                {exp.status === "succeeded" && exp.test_rows === 0 ? (
                  <span className="cell-warning" data-testid={`export-${exp.id}-empty-test`}>
                    empty split
                  </span>
                ) : (
                  formatCount(exp.test_rows)
                )}
              </td>
              <td>
                <ExportFiles projectId={projectId} exp={exp} />
                <DroppedRows exp={exp} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const DROP_REASONS: Record<string, string> = {
  few_votes: "too few votes",
  no_consensus: "no consensus",
  low_confidence: "low confidence",
  tie: "ties",
  both_bad: "both bad",
};

/** Why comparisons were left out of an export ("no consensus: 8"), from its counts. */
export function droppedReasons(counts: Record<string, unknown>): [string, number][] {
  return Object.entries(DROP_REASONS)
    .map(([key, label]): [string, number] => [label, typeof counts[key] === "number" ? (counts[key] as number) : 0])
    .filter(([, n]) => n > 0);
}

function DroppedRows({ exp }: { exp: DatasetExport }) {
  const reasons = droppedReasons(exp.counts ?? {});
  if (reasons.length === 0) return null;
  return (
    <p className="cell-note" data-testid={`export-${exp.id}-dropped`}>
      Left out: {reasons.map(([label, n]) => `${label}: ${formatCount(n)}`).join(", ")}
    </p>
  );
}

/** A `datetime-local` value ("2025-03-01T12:00", local time) as an ISO string with a zone; null when invalid. */
export function localToIso(value: string): string | null {
  if (!value) return null;
  const time = new Date(value).getTime();
  return Number.isFinite(time) ? new Date(time).toISOString() : null;
}

interface ExportDraft {
  testFraction: string;
  minVotes: string;
  consensus: Consensus;
  ties: TiePolicy;
  formats: ExportFormat[];
  judgedAfter: string;
}

const EMPTY_DRAFT: ExportDraft = {
  testFraction: "0.1",
  minVotes: "1",
  consensus: "majority",
  ties: "exclude",
  formats: ["jsonl"],
  judgedAfter: "",
};

/** Client-side checks; the server checks again (and names the field on a 400). */
function validate(draft: ExportDraft): { body: ExportRequest } | { errors: Record<string, string[]> } {
  const errors: Record<string, string[]> = {};
  const testFraction = Number(draft.testFraction);
  if (draft.testFraction.trim() === "" || !Number.isFinite(testFraction) || testFraction < 0 || testFraction > 0.9) {
    errors.test_fraction = ["Enter a number between 0 and 0.9."];
  }
  const minVotes = Number(draft.minVotes);
  if (draft.minVotes.trim() === "" || !Number.isInteger(minVotes) || minVotes < 1) {
    errors.min_votes = ["Enter a whole number of at least 1."];
  }
  if (draft.formats.length === 0) errors.formats = ["Pick at least one format."];
  const judgedAfter = localToIso(draft.judgedAfter);
  if (draft.judgedAfter && judgedAfter === null) errors.judged_after = ["Enter a valid date and time."];
  if (Object.keys(errors).length > 0) return { errors };
  const body: ExportRequest = {
    test_fraction: testFraction,
    min_votes: minVotes,
    consensus: draft.consensus,
    ties: draft.ties,
    formats: EXPORT_FORMATS.filter((f) => draft.formats.includes(f)),
  };
  if (judgedAfter) body.judged_after = judgedAfter;
  return { body };
}

export function NewExportForm({
  projectId,
  onCreated,
  onClose,
}: {
  projectId: number;
  onCreated(exp: DatasetExport): void;
  onClose(): void;
}) {
  const handleError = useApiErrorHandler();
  const id = useId();
  const [draft, setDraft] = useState<ExportDraft>(EMPTY_DRAFT);
  const [localErrors, setLocalErrors] = useState<Record<string, string[]>>({});
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [submitting, setSubmitting] = useState(false);

  const serverErrors = fieldErrors(submitError);
  const errorsOf = (field: string) => [...(localErrors[field] ?? []), ...(serverErrors[field] ?? [])];
  const errorId = (field: string) => `${id}-${field}-error`;
  const invalidProps = (field: string) =>
    errorsOf(field).length > 0 ? { "aria-invalid": true as const, "aria-describedby": errorId(field) } : {};
  const set = (change: Partial<ExportDraft>) => setDraft((d) => ({ ...d, ...change }));

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (submitting) return;
    const result = validate(draft);
    if ("errors" in result) {
      setLocalErrors(result.errors);
      setSubmitError(null);
      return;
    }
    setLocalErrors({});
    setSubmitError(null);
    setSubmitting(true);
    try {
      onCreated(await consoleApi.createExport(projectId, result.body));
    } catch (err) {
      setSubmitError(handleError(err));
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <form
      className="card console-form new-export"
      aria-labelledby={`${id}-title`}
      data-testid="new-export-form"
      onSubmit={(e) => void onSubmit(e)}
      noValidate
    >
      <h2 id={`${id}-title`} className="console-detail-title">
        New export
      </h2>
      <div className="console-form-grid">
        <div className="console-field">
          <label htmlFor={`${id}-test-fraction`}>Test fraction</label>
          <input
            id={`${id}-test-fraction`}
            type="number"
            min={0}
            max={0.9}
            step={0.05}
            value={draft.testFraction}
            onChange={(e) => set({ testFraction: e.target.value })}
            {...invalidProps("test_fraction")}
          />
          <FieldError id={errorId("test_fraction")} messages={errorsOf("test_fraction")} />
          {Number(draft.testFraction) === 0 && draft.testFraction.trim() !== "" && (
            <p className="field-note warning" role="note">
              A test fraction of 0 leaves the test split empty: a reward model trained on this
              export gets no held-out accuracy, and a round stops at its test-split gate.
            </p>
          )}
        </div>
        <div className="console-field">
          <label htmlFor={`${id}-min-votes`}>Minimum votes</label>
          <input
            id={`${id}-min-votes`}
            type="number"
            min={1}
            step={1}
            value={draft.minVotes}
            onChange={(e) => set({ minVotes: e.target.value })}
            {...invalidProps("min_votes")}
          />
          <FieldError id={errorId("min_votes")} messages={errorsOf("min_votes")} />
        </div>
        <div className="console-field">
          <label htmlFor={`${id}-consensus`}>Consensus</label>
          <select
            id={`${id}-consensus`}
            value={draft.consensus}
            onChange={(e) => set({ consensus: e.target.value as Consensus })}
            {...invalidProps("consensus")}
          >
            <option value="majority">Majority vote</option>
            <option value="dawid_skene">Dawid–Skene</option>
          </select>
          <FieldError id={errorId("consensus")} messages={errorsOf("consensus")} />
        </div>
        <div className="console-field">
          <label htmlFor={`${id}-ties`}>Ties</label>
          <select id={`${id}-ties`} value={draft.ties} onChange={(e) => set({ ties: e.target.value as TiePolicy })} {...invalidProps("ties")}>
            <option value="exclude">Exclude</option>
            <option value="keep">Keep</option>
          </select>
          <FieldError id={errorId("ties")} messages={errorsOf("ties")} />
        </div>
        <fieldset className="console-field console-fieldset" {...invalidProps("formats")}>
          <legend>Formats</legend>
          {EXPORT_FORMATS.map((format) => (
            <label key={format} className="check-label">
              <input
                type="checkbox"
                checked={draft.formats.includes(format)}
                onChange={(e) =>
                  set({
                    formats: e.target.checked ? [...draft.formats, format] : draft.formats.filter((f) => f !== format),
                  })
                }
              />{" "}
              {FORMAT_LABELS[format]}
            </label>
          ))}
          <FieldError id={errorId("formats")} messages={errorsOf("formats")} />
        </fieldset>
        <div className="console-field">
          <label htmlFor={`${id}-judged-after`}>Judged after (optional)</label>
          <input
            id={`${id}-judged-after`}
            type="datetime-local"
            value={draft.judgedAfter}
            onChange={(e) => set({ judgedAfter: e.target.value })}
            {...invalidProps("judged_after")}
          />
          <FieldError id={errorId("judged_after")} messages={errorsOf("judged_after")} />
        </div>
      </div>
      <SubmitError error={submitError} shown={FORM_FIELDS} />
      <div className="console-form-actions">
        <button type="submit" className="button" disabled={submitting} aria-busy={submitting}>
          Create export
        </button>
        <button type="button" className="button button-secondary" onClick={onClose}>
          Close
        </button>
        {submitting && (
          <span className="muted" role="status">
            Exporting…
          </span>
        )}
      </div>
    </form>
  );
}

const anyActive = (exports: DatasetExport[]) => exports.some((e) => isActiveStatus(e.status));

/** The project's dataset exports with their downloads, and "New export". Polls while one is being written. */
export function ExportsTab({ projectId, pollIntervalMs = POLL_INTERVAL_MS }: { projectId: number; pollIntervalMs?: number }) {
  const [selected, select] = useSelection("export");
  const [formOpen, setFormOpen] = useState(false);
  const load = useCallback((signal: AbortSignal) => consoleApi.exports(projectId, signal), [projectId]);
  const { state, reload, update } = usePolled(load, anyActive, pollIntervalMs);
  const exports = useMemo(() => (state.status === "loaded" ? [...state.data].sort((a, b) => b.id - a.id) : []), [state]);

  const onCreated = useCallback(
    (exp: DatasetExport) => {
      update((list) => [exp, ...list.filter((e) => e.id !== exp.id)]);
      setFormOpen(false);
      select(exp.id);
      if (isActiveStatus(exp.status)) reload(); // poll until it is written
    },
    [update, select, reload],
  );

  return (
    <div className="console-tab exports-tab">
      <div className="console-toolbar">
        <p className="muted console-toolbar-text">Preference datasets exported from the judgments, with their files.</p>
        {!formOpen && (
          <button type="button" className="button" onClick={() => setFormOpen(true)}>
            New export
          </button>
        )}
      </div>
      {formOpen && <NewExportForm projectId={projectId} onCreated={onCreated} onClose={() => setFormOpen(false)} />}
      {state.status === "loading" && <Loading>Loading exports…</Loading>}
      {state.status === "error" && <LoadError error={state.error} onRetry={reload} />}
      {state.status === "loaded" && exports.length === 0 && (
        <div className="empty">
          <p>No exports yet</p>
        </div>
      )}
      {state.status === "loaded" && exports.length > 0 && (
        <ExportTable projectId={projectId} exports={exports} selectedId={selected} />
      )}
    </div>
  );
}
