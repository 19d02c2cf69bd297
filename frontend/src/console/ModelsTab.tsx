import { useCallback, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { formatCount } from "../quality/format";
import { consoleHref, LoadError, Loading, ObjectLink, StatusBadge, useSelection } from "./common";
import { consoleApi } from "./consoleApi";
import { formatBytes, formatWhen } from "./format";
import { RegisterModelForm } from "./RegisterModelForm";
import type { Artifact, Lineage, ModelInfo, ModelRegistration } from "./types";
import { POLL_INTERVAL_MS, useLoad } from "./useLoad";

function ArtifactTable({ artifacts, selectedId }: { artifacts: Artifact[]; selectedId: number | null }) {
  return (
    <div className="table-wrap">
      <table className="table table-compact console-table" aria-label="Models">
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Kind</th>
            <th scope="col">Created</th>
            <th scope="col" className="numeric">
              Size
            </th>
          </tr>
        </thead>
        <tbody>
          {artifacts.map((artifact) => {
            const selected = artifact.id === selectedId;
            return (
              <tr key={artifact.id} className={selected ? "row-selected" : undefined} data-testid={`model-row-${artifact.id}`}>
                <th scope="row">
                  <Link to={consoleHref("model", artifact.id)} aria-current={selected ? "true" : undefined}>
                    {artifact.name || `Model #${artifact.id}`}
                  </Link>{" "}
                  <span className="cell-note">#{artifact.id}</span>
                  {artifact.project_id === null && <span className="cell-note"> · shared</span>}
                  {artifact.origin === "registered" && <span className="cell-note"> · registered</span>}
                </th>
                <td>{artifact.kind}</td>
                <td>{formatWhen(artifact.created_at)}</td>
                <td className="numeric">{formatBytes(artifact.size_bytes)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function ArtifactName({ artifact, current }: { artifact: Artifact; current?: boolean }) {
  const text = `${artifact.name || `Model #${artifact.id}`} (#${artifact.id}, ${artifact.kind})`;
  return current ? <strong>{text}</strong> : <Link to={consoleHref("model", artifact.id)}>{text}</Link>;
}

function LineageView({ lineage }: { lineage: Lineage }) {
  const { artifact, ancestors, run, dataset_export: exp, judgments, round } = lineage;
  return (
    <dl className="lineage">
      <div>
        <dt>Ancestors</dt>
        <dd>
          <ol className="lineage-chain" aria-label="Ancestors" data-testid="lineage-ancestors">
            <li>
              <ArtifactName artifact={artifact} current />
            </li>
            {ancestors.map((a) => (
              <li key={a.id}>
                <ArtifactName artifact={a} />
              </li>
            ))}
          </ol>
          {ancestors.length === 0 && <p className="muted">No parent: a base model.</p>}
        </dd>
      </div>
      <div>
        <dt>Produced by</dt>
        <dd data-testid="lineage-run">
          {run ? (
            <>
              <ObjectLink kind="run" id={run.id} /> · {run.kind} · <StatusBadge status={run.status} />
              {run.finished_at && ` · finished ${formatWhen(run.finished_at)}`}
            </>
          ) : (
            <span className="muted">No training run (registered directly).</span>
          )}
        </dd>
      </div>
      <div>
        <dt>Learned from</dt>
        <dd data-testid="lineage-export">
          {exp ? (
            <>
              <ObjectLink kind="export" id={exp.id} /> · {formatCount(exp.train_rows)} train / {formatCount(exp.test_rows)} test
              rows · created {formatWhen(exp.created_at)}
            </>
          ) : (
            <span className="muted">No dataset export.</span>
          )}
        </dd>
      </div>
      <div>
        <dt>Judgments behind it</dt>
        <dd data-testid="lineage-judgments">
          {judgments ? (
            <>
              {formatCount(judgments.count)} {judgments.count === 1 ? "judgment" : "judgments"} by{" "}
              {formatCount(judgments.annotators)} {judgments.annotators === 1 ? "annotator" : "annotators"}
              {judgments.first_at && judgments.last_at && (
                <>
                  , from {formatWhen(judgments.first_at)} to {formatWhen(judgments.last_at)}
                </>
              )}
            </>
          ) : (
            <span className="muted">—</span>
          )}
        </dd>
      </div>
      <div>
        <dt>Round</dt>
        <dd data-testid="lineage-round">
          {round ? (
            <Link to={consoleHref("round", round.id)}>Round {round.number}</Link>
          ) : (
            <span className="muted">Not made by a round.</span>
          )}
        </dd>
      </div>
    </dl>
  );
}

function isModelInfo(info: Artifact["model_info"]): info is ModelInfo {
  return "sha256" in info;
}

function yesNo(value: boolean): string {
  return value ? "yes" : "no";
}

/** What validation recorded of a model registered from an existing directory. */
function RecordedInfo({ artifact }: { artifact: Artifact }) {
  const info = artifact.model_info;
  if (artifact.origin !== "registered" || !isModelInfo(info)) return null;
  const rows: [string, string][] = [
    ["Directory", artifact.path],
    ["Architecture", info.architecture ?? "—"],
    ["Parameters", info.parameter_count === null ? "—" : formatCount(info.parameter_count)],
    ["Dtype", info.dtype ? `${info.dtype} (from ${info.dtype_source})` : "—"],
    ["Vocabulary", formatCount(info.vocab_size)],
    ["Chat template", yesNo(info.has_chat_template)],
    ["Pad token", info.has_pad_token ? "yes" : "no (pads with EOS)"],
    ["EOS token", info.eos_token ?? "—"],
  ];
  if (info.ensemble_members) rows.push(["Ensemble members", info.ensemble_members.join(", ")]);
  return (
    <section aria-label="Registered model" data-testid="recorded-info">
      <p className="muted">Registered from an existing directory (used in place).</p>
      <dl className="lineage">
        {rows.map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function LineagePanel({ projectId, artifactId }: { projectId: number; artifactId: number }) {
  const load = useCallback((signal: AbortSignal) => consoleApi.lineage(projectId, artifactId, signal), [projectId, artifactId]);
  const { state, reload } = useLoad(load);
  const title = state.status === "loaded" ? state.data.artifact.name || `Model #${artifactId}` : `Model #${artifactId}`;
  return (
    <article className="card console-detail lineage-detail" aria-labelledby={`model-${artifactId}-title`} data-testid="lineage">
      <h2 id={`model-${artifactId}-title`} className="console-detail-title">
        Lineage of {title}
      </h2>
      {state.status === "loading" && <Loading>Loading lineage…</Loading>}
      {state.status === "error" && <LoadError error={state.error} onRetry={reload} />}
      {state.status === "loaded" && (
        <>
          <p className="muted console-detail-meta">
            {state.data.artifact.kind} · {formatBytes(state.data.artifact.size_bytes)} · created{" "}
            {formatWhen(state.data.artifact.created_at)}
            {state.data.artifact.sha256 && (
              <>
                {" "}
                · sha256 <code title={state.data.artifact.sha256}>{state.data.artifact.sha256.slice(0, 12)}</code>
              </>
            )}
          </p>
          <RecordedInfo artifact={state.data.artifact} />
          <LineageView lineage={state.data} />
        </>
      )}
    </article>
  );
}

/** The model registry: the project's artifacts and the shared base models, with lineage, and
 * "Register a model" for an existing directory (validated in the background). */
export function ModelsTab({ projectId, pollIntervalMs = POLL_INTERVAL_MS }: { projectId: number; pollIntervalMs?: number }) {
  const [selected] = useSelection("model");
  const [formOpen, setFormOpen] = useState(false);
  const load = useCallback((signal: AbortSignal) => consoleApi.artifacts(projectId, signal), [projectId]);
  const { state, reload } = useLoad(load);
  const artifacts = useMemo(() => (state.status === "loaded" ? [...state.data].sort((a, b) => b.id - a.id) : []), [state]);
  const onRegistered = useCallback(
    (registration: ModelRegistration) => {
      if (registration.status === "registered") reload();
    },
    [reload],
  );

  return (
    <div className="console-tab models-tab">
      <div className="console-toolbar">
        <p className="muted console-toolbar-text">Models made by Preflab and models registered from existing directories.</p>
        {!formOpen && (
          <button type="button" className="button" onClick={() => setFormOpen(true)}>
            Register a model
          </button>
        )}
      </div>
      {formOpen && (
        <RegisterModelForm
          projectId={projectId}
          onRegistered={onRegistered}
          onClose={() => setFormOpen(false)}
          pollIntervalMs={pollIntervalMs}
        />
      )}
      {state.status === "loading" && <Loading>Loading models…</Loading>}
      {state.status === "error" && <LoadError error={state.error} onRetry={reload} />}
      {state.status === "loaded" && artifacts.length === 0 && (
        <div className="empty">
          <p>No models yet</p>
        </div>
      )}
      {state.status === "loaded" && artifacts.length > 0 && (
        <>
          <ArtifactTable artifacts={artifacts} selectedId={selected} />
          {selected === null && <p className="muted console-hint">Select a model to see its lineage.</p>}
        </>
      )}
      {selected !== null && state.status !== "error" && <LineagePanel key={selected} projectId={projectId} artifactId={selected} />}
    </div>
  );
}
