import { useCallback, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { useApiErrorHandler } from "../auth";
import { Loading, LoadError } from "../components/LoadStatus";
import { isForbidden, useLoad } from "../console/useLoad";
import { formatDateTime } from "../quality/format";
import { fieldErrors } from "./fieldErrors";
import { changedSettings, fromDraft, SettingsFields, toDraft, type SettingsDraft } from "./SettingsFields";
import { adminApi, type AdminProject, type ProjectSettings } from "./types";
import "./admin.css";

function settingsOf(project: AdminProject): ProjectSettings {
  const {
    name,
    description,
    instructions,
    overlap_k,
    lease_ttl_seconds,
    allow_tie,
    allow_both_bad,
    strength_scale,
    rationale_mode,
    gold_rate,
    min_gold_accuracy,
    min_consensus_agreement,
    min_median_seconds,
    max_position_p_value,
  } = project;
  return {
    name,
    description,
    instructions,
    overlap_k,
    lease_ttl_seconds,
    allow_tie,
    allow_both_bad,
    strength_scale,
    rationale_mode,
    gold_rate,
    min_gold_accuracy,
    min_consensus_agreement,
    min_median_seconds,
    max_position_p_value,
  };
}

/** Archive (with a confirm step) or bring back a project. */
function ArchivePanel({ project, onChange }: { project: AdminProject; onChange(p: AdminProject): void }) {
  const handleError = useApiErrorHandler();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<AdminProject>) {
    setBusy(true);
    setError(null);
    try {
      onChange(await action());
      setConfirming(false);
    } catch (err) {
      setError(handleError(err).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card admin-danger" aria-labelledby="archive-title">
      <h2 id="archive-title">Archive</h2>
      {project.archived_at ? (
        <>
          <p>
            Archived on {formatDateTime(project.archived_at)}: hidden from project lists, and its queue hands out no
            new items.
          </p>
          <button
            type="button"
            className="button button-secondary"
            disabled={busy}
            onClick={() => void run(() => adminApi.unarchive(project.id))}
          >
            Unarchive project
          </button>
        </>
      ) : confirming ? (
        <div className="admin-confirm" role="group" aria-label="Confirm archiving">
          <span>Archive “{project.name}”? Annotators will get no new items.</span>
          <button
            type="button"
            className="button"
            disabled={busy}
            onClick={() => void run(() => adminApi.archive(project.id))}
          >
            Yes, archive
          </button>
          <button type="button" className="button button-secondary" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <>
          <p className="muted">Hides the project from project lists and stops its queue. It can be brought back.</p>
          <button type="button" className="button button-secondary" onClick={() => setConfirming(true)}>
            Archive project…
          </button>
        </>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function SettingsForm({ project, onSaved }: { project: AdminProject; onSaved(p: AdminProject): void }) {
  const handleError = useApiErrorHandler();
  const [draft, setDraft] = useState<SettingsDraft>(() => toDraft(settingsOf(project)));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const changes = changedSettings(fromDraft(draft), settingsOf(project));
    setErrors({});
    setMessage(null);
    setSaved(false);
    if (Object.keys(changes).length === 0) {
      setSaved(true);
      return;
    }
    setBusy(true);
    try {
      const updated = await adminApi.updateProject(project.id, changes);
      onSaved(updated);
      setDraft(toDraft(settingsOf(updated)));
      setSaved(true);
    } catch (err) {
      const error = handleError(err);
      setErrors(fieldErrors(error));
      setMessage(error.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="card admin-form" onSubmit={onSubmit} aria-label="Project settings" noValidate>
      <SettingsFields
        draft={draft}
        onChange={(d) => {
          setDraft(d);
          setSaved(false);
        }}
        errors={errors}
      />
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <p role="status" className="muted">
        {saved ? "Settings saved." : ""}
      </p>
      <button type="submit" className="button" disabled={busy} aria-busy={busy}>
        {busy ? "Saving…" : "Save settings"}
      </button>
    </form>
  );
}

/** /projects/:id/settings — a project admin's settings, instructions preview and archive. */
export function ProjectSettingsPage({ projectId }: { projectId: number }) {
  const load = useCallback((signal: AbortSignal) => adminApi.project(projectId, signal), [projectId]);
  const { state, reload, update } = useLoad(load);

  let content;
  if (state.status === "loading") content = <Loading what="settings" />;
  else if (state.status === "error" && (isForbidden(state.error) || state.error.status === 404))
    content = (
      <div className="card">
        <h1>Project settings</h1>
        <p className="error" role="alert">
          Only the project’s admins can change its settings.
        </p>
      </div>
    );
  else if (state.status === "error") content = <LoadError message={state.error.message} onRetry={reload} />;
  else {
    const project = state.data;
    const isAdmin = project.role === "project_admin" || project.role === null;
    content = !isAdmin ? (
      <div className="card">
        <h1>Project settings</h1>
        <p className="error" role="alert">
          Only the project’s admins can change its settings.
        </p>
      </div>
    ) : (
      <>
        <h1>Settings — {project.name}</h1>
        <p className="admin-links">
          <Link to={`/projects/${project.id}/members`}>Members and invites</Link>
        </p>
        <SettingsForm key={project.id} project={project} onSaved={(p) => update(() => p)} />
        <ArchivePanel project={project} onChange={(p) => update(() => p)} />
      </>
    );
  }

  return (
    <main className="page">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}`}>← Project</Link>
      </p>
      {content}
    </main>
  );
}
