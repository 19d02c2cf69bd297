import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link } from "react-router-dom";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { formatPercent } from "../quality/format";
import { consoleHref, isActiveStatus, LoadError, Loading, ObjectLink, StatusBadge, useSelection } from "./common";
import { consoleApi } from "./consoleApi";
import { describeLauncher, formatDuration, formatMetric, formatWhen } from "./format";
import { MetricChart } from "./MetricChart";
import { metricSeries, pickMetricKeys } from "./metrics";
import type { TrainingRun } from "./types";
import { POLL_INTERVAL_MS, useLoad } from "./useLoad";
import { useRunMetrics } from "./useRunMetrics";

function clampProgress(progress: number): number {
  return Number.isFinite(progress) ? Math.max(0, Math.min(1, progress)) : 0;
}

function ProgressBar({ run }: { run: TrainingRun }) {
  const value = clampProgress(run.progress);
  return (
    <span className="run-progress">
      <progress max={1} value={value} aria-label={`Progress of run ${run.id}`} />
      <span className="run-progress-text">{formatPercent(value)}</span>
    </span>
  );
}

function RunTable({ runs, selectedId }: { runs: TrainingRun[]; selectedId: number | null }) {
  return (
    <div className="table-wrap">
      <table className="table table-compact console-table" aria-label="Training runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Progress</th>
            <th scope="col">Created</th>
            <th scope="col" className="numeric">
              Attempts
            </th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => {
            const selected = run.id === selectedId;
            return (
              <tr key={run.id} className={selected ? "row-selected" : undefined} data-testid={`run-row-${run.id}`}>
                <th scope="row">
                  <Link to={consoleHref("run", run.id)} aria-current={selected ? "true" : undefined}>
                    Run #{run.id}
                  </Link>
                </th>
                <td>{run.kind}</td>
                <td>
                  <StatusBadge status={run.status} />
                  {run.cancel_requested && isActiveStatus(run.status) && <span className="cell-note"> cancelling</span>}
                </td>
                <td>
                  <ProgressBar run={run} />
                </td>
                <td>{formatWhen(run.created_at)}</td>
                <td className="numeric">{run.attempts}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The summary numbers a run reports in `metrics` (flat numeric entries only). */
function summaryEntries(metrics: Record<string, unknown>): [string, number][] {
  return Object.entries(metrics ?? {}).filter((e): e is [string, number] => typeof e[1] === "number" && Number.isFinite(e[1]));
}

export interface RunDetailProps {
  projectId: number;
  runId: number;
  onChange?(run: TrainingRun): void;
  pollIntervalMs?: number;
}

/** A run: status, error, config, and one live chart per metric (key it by run id). */
export function RunDetail({ projectId, runId, onChange, pollIntervalMs = POLL_INTERVAL_MS }: RunDetailProps) {
  const handleError = useApiErrorHandler();
  const { run, rows, error, apply, reload } = useRunMetrics(projectId, runId, pollIntervalMs);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (run) changed.current?.(run);
  }, [run]);

  const keys = useMemo(() => pickMetricKeys(rows), [rows]);

  if (!run) {
    if (error) return <LoadError error={error} onRetry={reload} />;
    return <Loading>Loading run…</Loading>;
  }

  async function cancel() {
    setBusy(true);
    setActionError(null);
    try {
      apply(await consoleApi.cancelRun(projectId, runId));
    } catch (err) {
      setActionError(handleError(err));
    } finally {
      setBusy(false);
    }
  }

  const active = isActiveStatus(run.status);
  const summary = summaryEntries(run.metrics);
  const duration = formatDuration(run.started_at, run.finished_at);
  return (
    <article className="card console-detail run-detail" aria-labelledby={`run-${run.id}-title`} data-testid="run-detail">
      <header className="console-detail-header">
        <div>
          <h2 id={`run-${run.id}-title`} className="console-detail-title">
            Run #{run.id} · {run.kind}
          </h2>
          <p className="muted console-detail-meta">
            <StatusBadge status={run.status} /> · <ProgressBar run={run} /> · attempt {run.attempts}
            {run.worker && ` on ${run.worker}`} · created {formatWhen(run.created_at)}
            {duration && ` · took ${duration}`}
          </p>
        </div>
        <div className="console-actions">
          {active && (
            <button
              type="button"
              className="button button-secondary"
              onClick={() => void cancel()}
              disabled={busy || run.cancel_requested}
            >
              {run.cancel_requested ? "Cancelling…" : "Cancel run"}
            </button>
          )}
        </div>
      </header>
      {actionError && (
        <p className="error" role="alert">
          {actionError.message}
        </p>
      )}
      {run.error && (
        <p className="error run-error" data-testid="run-error">
          {run.error}
        </p>
      )}
      <dl className="console-facts">
        <div>
          <dt>Launcher</dt>
          <dd data-testid="run-launcher">{describeLauncher(run)}</dd>
        </div>
        <div>
          <dt>Base model</dt>
          <dd>
            <ObjectLink kind="model" id={run.base_artifact_id} />
          </dd>
        </div>
        {run.dataset_export_id !== null && (
          <div>
            <dt>Dataset</dt>
            <dd>
              <ObjectLink kind="export" id={run.dataset_export_id} />
            </dd>
          </div>
        )}
        {run.reward_artifact_id !== null && (
          <div>
            <dt>Reward model</dt>
            <dd>
              <ObjectLink kind="model" id={run.reward_artifact_id} />
            </dd>
          </div>
        )}
        {run.compare_artifact_id !== null && (
          <div>
            <dt>Compared with</dt>
            <dd>
              <ObjectLink kind="model" id={run.compare_artifact_id} />
            </dd>
          </div>
        )}
        {run.output_artifact_id !== null && (
          <div>
            <dt>Output</dt>
            <dd>
              <ObjectLink kind="model" id={run.output_artifact_id} />
            </dd>
          </div>
        )}
        {run.output_batch_id !== null && (
          <div>
            <dt>Batch</dt>
            <dd>Batch #{run.output_batch_id}</dd>
          </div>
        )}
        {run.prompt_count > 0 && (
          <div>
            <dt>Prompts</dt>
            <dd>{formatMetric(run.prompt_count)}</dd>
          </div>
        )}
      </dl>
      {summary.length > 0 && (
        <dl className="console-facts run-summary" aria-label="Latest metrics">
          {summary.map(([key, value]) => (
            <div key={key}>
              <dt>{key}</dt>
              <dd>{formatMetric(value)}</dd>
            </div>
          ))}
        </dl>
      )}
      <details className="run-config">
        <summary>Config</summary>
        <pre className="json-block">{JSON.stringify(run.config ?? {}, null, 2)}</pre>
      </details>
      <section className="console-subsection" aria-labelledby={`run-${run.id}-metrics`}>
        <h3 id={`run-${run.id}-metrics`} className="section-title">
          Metrics
        </h3>
        {active && (
          <p className="muted polling-note" role="status">
            Live: {rows.length} logged {rows.length === 1 ? "step" : "steps"}, updating every{" "}
            {Math.round(pollIntervalMs / 1000)} s…
          </p>
        )}
        {keys.length === 0 ? (
          <p className="muted">No metrics logged yet.</p>
        ) : (
          <div className="metric-charts">
            {keys.map((key) => (
              <MetricChart key={key} name={key} points={metricSeries(rows, key)} />
            ))}
          </div>
        )}
      </section>
    </article>
  );
}

/** The project's training runs, the selected one in detail. */
export function RunsTab({ projectId, pollIntervalMs = POLL_INTERVAL_MS }: { projectId: number; pollIntervalMs?: number }) {
  const [selected] = useSelection("run");
  const load = useCallback((signal: AbortSignal) => consoleApi.runs(projectId, signal), [projectId]);
  const { state, reload, update } = useLoad(load);
  const runs = useMemo(() => (state.status === "loaded" ? [...state.data].sort((a, b) => b.id - a.id) : []), [state]);

  const onChange = useCallback(
    (run: TrainingRun) => update((list) => list.map((r) => (r.id === run.id ? run : r))),
    [update],
  );

  return (
    <div className="console-tab runs-tab">
      {state.status === "loading" && <Loading>Loading training runs…</Loading>}
      {state.status === "error" && <LoadError error={state.error} onRetry={reload} />}
      {state.status === "loaded" && runs.length === 0 && (
        <div className="empty">
          <p>No training runs yet</p>
          <p className="muted">Rounds start reward, policy and generation runs.</p>
        </div>
      )}
      {state.status === "loaded" && runs.length > 0 && (
        <>
          <RunTable runs={runs} selectedId={selected} />
          {selected === null && <p className="muted console-hint">Select a run to see its metrics.</p>}
        </>
      )}
      {selected !== null && state.status !== "error" && (
        <RunDetail key={selected} projectId={projectId} runId={selected} onChange={onChange} pollIntervalMs={pollIntervalMs} />
      )}
    </div>
  );
}
