// The import page of a project admin: choose or drop a .jsonl/.json file, set the import
// options, watch the upload and then the import, cancel it, read the result and its bad
// lines; the project's past import jobs below.

import { useCallback, useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import { Link } from "react-router-dom";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { isForbidden, usePolled, useLoad } from "../console/useLoad";
import { formatBytes, formatWhen } from "../console/format";
import { formatCount } from "../quality/format";
import { useProject } from "../useProject";
import { importApi, uploadImport } from "./importApi";
import { isActive, type ImportJob, type Pairing } from "./types";
import "./imports.css";

export const JOB_POLL_MS = 1000;
const ACCEPTED = [".jsonl", ".json"];
const ADMIN_ONLY = "You need to be an admin of this project to import comparisons.";

const PAIRINGS: { value: Pairing; label: string }[] = [
  { value: "all_pairs", label: "All pairs" },
  { value: "random_pairs", label: "Random pairs" },
  { value: "adjacent", label: "Adjacent pairs" },
];

export function acceptedFile(name: string): boolean {
  const lower = name.toLowerCase();
  return ACCEPTED.some((ext) => lower.endsWith(ext));
}

function percent(share: number): string {
  return `${Math.round(Math.min(1, Math.max(0, share)) * 100)}%`;
}

function StatusPill({ status }: { status: string }) {
  return <span className={`badge status-badge status-${status}`}>{status}</span>;
}

function ErrorText({ error }: { error: ApiError }) {
  return (
    <p className="error" role="alert">
      {isForbidden(error) ? ADMIN_ONLY : error.message}
    </p>
  );
}

interface Draft {
  file: File | null;
  pairing: Pairing;
  pairsPerPrompt: string;
  skipBadLines: boolean;
  batchName: string;
}

const EMPTY_DRAFT: Draft = { file: null, pairing: "all_pairs", pairsPerPrompt: "3", skipBadLines: false, batchName: "" };

function UploadForm({ projectId, onJob }: { projectId: number; onJob(job: ImportJob): void }) {
  const handleError = useApiErrorHandler();
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const [problem, setProblem] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [sent, setSent] = useState<number | null>(null);
  const [dragging, setDragging] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const ids = { file: useId(), pairing: useId(), pairs: useId(), skip: useId(), batch: useId() };

  function choose(file: File | undefined | null) {
    setError(null);
    if (!file) return;
    if (!acceptedFile(file.name)) {
      setProblem(`${file.name} is not a .jsonl or .json file.`);
      return;
    }
    setProblem(null);
    setDraft((d) => ({ ...d, file }));
  }

  function onDrop(event: DragEvent<HTMLDivElement>) {
    event.preventDefault();
    setDragging(false);
    choose(event.dataTransfer.files[0]);
  }

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (!draft.file) {
      setProblem("Choose a .jsonl or .json file first.");
      return;
    }
    const pairs = Number(draft.pairsPerPrompt);
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > 1000) {
      setProblem("Pairs per prompt must be a whole number from 1 to 1000.");
      return;
    }
    setProblem(null);
    setError(null);
    setSent(0);
    try {
      const job = await uploadImport(
        projectId,
        {
          file: draft.file,
          pairing: draft.pairing,
          pairs_per_prompt: pairs,
          skip_bad_lines: draft.skipBadLines,
          batch_name: draft.batchName.trim(),
        },
        setSent,
      );
      onJob(job);
      setDraft((d) => ({ ...d, file: null }));
      if (inputRef.current) inputRef.current.value = "";
    } catch (err) {
      setError(handleError(err));
    } finally {
      setSent(null);
    }
  }

  const uploading = sent !== null;
  return (
    <form className="card import-form" onSubmit={onSubmit} aria-label="New import">
      <div
        className={`drop-zone${dragging ? " drop-zone-active" : ""}`}
        data-testid="drop-zone"
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop a .jsonl or .json file here, or</p>
        <label htmlFor={ids.file} className="button button-secondary">
          Choose a file
        </label>
        <input
          id={ids.file}
          ref={inputRef}
          className="visually-hidden-input"
          type="file"
          accept=".jsonl,.json,application/json"
          aria-label="Import file"
          onChange={(event) => choose(event.target.files?.[0])}
        />
        <p className="drop-zone-file" aria-live="polite">
          {draft.file ? `${draft.file.name} (${formatBytes(draft.file.size)})` : "No file chosen."}
        </p>
      </div>
      <div className="import-options">
        <label htmlFor={ids.pairing}>Pairing</label>
        <select
          id={ids.pairing}
          value={draft.pairing}
          onChange={(event) => setDraft((d) => ({ ...d, pairing: event.target.value as Pairing }))}
        >
          {PAIRINGS.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
        </select>
        <label htmlFor={ids.pairs}>Pairs per prompt</label>
        <input
          id={ids.pairs}
          type="number"
          min={1}
          max={1000}
          value={draft.pairsPerPrompt}
          disabled={draft.pairing !== "random_pairs"}
          onChange={(event) => setDraft((d) => ({ ...d, pairsPerPrompt: event.target.value }))}
        />
        <label htmlFor={ids.batch}>Batch name</label>
        <input
          id={ids.batch}
          type="text"
          maxLength={200}
          placeholder="Import <file name>"
          value={draft.batchName}
          onChange={(event) => setDraft((d) => ({ ...d, batchName: event.target.value }))}
        />
        <span />
        <label className="checkbox-label">
          <input
            id={ids.skip}
            type="checkbox"
            checked={draft.skipBadLines}
            onChange={(event) => setDraft((d) => ({ ...d, skipBadLines: event.target.checked }))}
          />{" "}
          Skip bad lines (import the good ones; otherwise a bad line imports nothing)
        </label>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {error && <ErrorText error={error} />}
      {uploading && (
        <div className="import-progress">
          <progress aria-label="Upload progress" max={1} value={sent} />
          <span>Uploading… {percent(sent)}</span>
        </div>
      )}
      <button type="submit" className="button" disabled={uploading}>
        {uploading ? "Uploading…" : "Upload and import"}
      </button>
    </form>
  );
}

function Counts({ job }: { job: ImportJob }) {
  const rows: [string, number][] = [
    ["Prompts created", job.prompts_created],
    ["Responses created", job.responses_created],
    ["Comparisons created", job.comparisons_created],
    ["Comparisons already there", job.comparisons_existing],
    ["Bad lines", job.bad_line_count],
  ];
  return (
    <dl className="import-counts" aria-label="Import counts">
      {rows.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{formatCount(value)}</dd>
        </div>
      ))}
    </dl>
  );
}

function BadLines({ job }: { job: ImportJob }) {
  if (job.bad_line_count === 0) return null;
  const shown = job.bad_lines ?? [];
  return (
    <section aria-label="Bad lines of the file">
      <h3>
        Bad lines{" "}
        <a href={job.bad_lines_url} download>
          Download bad lines
        </a>{" "}
        <a href={`${job.bad_lines_url}?as=csv`} download>
          (CSV)
        </a>
      </h3>
      {shown.length < job.bad_line_count && (
        <p className="muted">
          The first {formatCount(shown.length)} of {formatCount(job.bad_line_count)}; the download has all of them.
        </p>
      )}
      <div className="table-wrap">
        <table className="table table-compact" aria-label="Bad lines">
          <thead>
            <tr>
              <th scope="col" className="numeric">
                Line
              </th>
              <th scope="col">Reason</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((bad, i) => (
              <tr key={`${bad.line}-${i}`}>
                <td className="numeric">{bad.line}</td>
                <td>{bad.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

/** The job being followed: polled while it is queued or running. */
function CurrentJob({ projectId, jobId, onFinished }: { projectId: number; jobId: number; onFinished(): void }) {
  const handleError = useApiErrorHandler();
  const finishedSeen = useRef(false);
  const load = useCallback((signal: AbortSignal) => importApi.get(projectId, jobId, signal), [projectId, jobId]);
  const keepPolling = useCallback(
    (job: ImportJob) => {
      const active = isActive(job);
      if (!active && !finishedSeen.current) {
        finishedSeen.current = true;
        onFinished();
      }
      return active;
    },
    [onFinished],
  );
  const { state, update } = usePolled(load, keepPolling, JOB_POLL_MS);
  const [cancelError, setCancelError] = useState<ApiError | null>(null);
  const [cancelling, setCancelling] = useState(false);

  if (state.status === "loading") {
    return (
      <p className="muted" role="status">
        Loading import job…
      </p>
    );
  }
  if (state.status === "error") return <ErrorText error={state.error} />;
  const job = state.data;

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      const changed = await importApi.cancel(projectId, jobId);
      update(() => changed);
    } catch (err) {
      setCancelError(handleError(err));
    } finally {
      setCancelling(false);
    }
  }

  return (
    <section className="card import-job" aria-label={`Import job ${job.id}`}>
      <h2>
        Import #{job.id} <StatusPill status={job.status} />
      </h2>
      <p className="muted">
        {job.original_name} · {formatBytes(job.size_bytes)}
        {job.lines_read > 0 && ` · ${formatCount(job.lines_read)} lines read`}
      </p>
      {isActive(job) && (
        <div className="import-progress">
          <progress aria-label="Import progress" max={1} value={job.progress} />
          <span>
            {job.status === "queued" ? "Waiting for a worker…" : `Importing… ${percent(job.progress)}`}
            {job.cancel_requested && " (cancelling)"}
          </span>
          <button
            type="button"
            className="button button-secondary"
            onClick={() => void cancel()}
            disabled={cancelling || job.cancel_requested}
          >
            Cancel
          </button>
        </div>
      )}
      {cancelError && <ErrorText error={cancelError} />}
      {job.status === "succeeded" && (
        <p role="status" className="import-result-ok">
          Imported {formatCount(job.comparisons_created)} comparisons
          {job.batch_id !== null && ` into batch #${job.batch_id}`}.
        </p>
      )}
      {job.error && (
        <p className="error" role="alert">
          {job.error}
        </p>
      )}
      {!isActive(job) && <Counts job={job} />}
      <BadLines job={job} />
    </section>
  );
}

function PastJobs({ jobs, currentId, onShow }: { jobs: ImportJob[]; currentId: number | null; onShow(id: number): void }) {
  if (jobs.length === 0) return <p className="muted">No imports yet.</p>;
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Import jobs">
        <thead>
          <tr>
            <th scope="col">Import</th>
            <th scope="col">File</th>
            <th scope="col">Status</th>
            <th scope="col">Created</th>
            <th scope="col" className="numeric">
              Comparisons
            </th>
            <th scope="col" className="numeric">
              Bad lines
            </th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id} aria-current={job.id === currentId ? "true" : undefined}>
              <th scope="row">Import #{job.id}</th>
              <td>{job.original_name}</td>
              <td>
                <StatusPill status={job.status} />
              </td>
              <td>
                {formatWhen(job.created_at)}
                {job.created_by && <span className="cell-note"> by {job.created_by}</span>}
              </td>
              <td className="numeric">{formatCount(job.comparisons_created)}</td>
              <td className="numeric">{formatCount(job.bad_line_count)}</td>
              <td>
                <button type="button" className="button button-secondary" onClick={() => onShow(job.id)}>
                  Show
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ImportPage({ projectId }: { projectId: number }) {
  const [projectState] = useProject(projectId);
  const [currentId, setCurrentId] = useState<number | null>(null);
  const loadJobs = useCallback((signal: AbortSignal) => importApi.list(projectId, signal), [projectId]);
  const jobs = useLoad(loadJobs);
  const { reload, update } = jobs;

  const onJob = useCallback(
    (job: ImportJob) => {
      setCurrentId(job.id);
      update((data) => ({ results: [job, ...data.results.filter((j) => j.id !== job.id)] }));
    },
    [update],
  );
  const name = projectState.status === "loaded" ? projectState.project.name : null;

  return (
    <main className="page import-page">
      <p>
        <Link to={`/projects/${projectId}`}>← {name ?? "Project"}</Link>
      </p>
      <h1>Import comparisons{name ? `: ${name}` : ""}</h1>
      <p className="muted">
        One record per line (JSONL) or a JSON array: a prompt with candidate responses, an explicit pair, or a TRL
        preference row. See the README, “Importing comparisons”.
      </p>
      {jobs.state.status === "error" && isForbidden(jobs.state.error) ? (
        <ErrorText error={jobs.state.error} />
      ) : (
        <>
          <UploadForm projectId={projectId} onJob={onJob} />
          {currentId !== null && (
            <CurrentJob key={currentId} projectId={projectId} jobId={currentId} onFinished={reload} />
          )}
          <section className="import-history">
            <h2>Past imports</h2>
            {jobs.state.status === "loading" && (
              <p className="muted" role="status">
                Loading imports…
              </p>
            )}
            {jobs.state.status === "error" && <ErrorText error={jobs.state.error} />}
            {jobs.state.status === "loaded" && (
              <PastJobs jobs={jobs.state.data.results} currentId={currentId} onShow={setCurrentId} />
            )}
          </section>
        </>
      )}
    </main>
  );
}
