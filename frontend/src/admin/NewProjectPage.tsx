import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useApiErrorHandler, useAuth } from "../auth";
import { fieldErrors } from "./fieldErrors";
import { fromDraft, SettingsFields, toDraft, type SettingsDraft } from "./SettingsFields";
import { adminApi, canCreateProjects, DEFAULT_SETTINGS } from "./types";
import "./admin.css";

/** /projects/new — the creator becomes the project's admin and lands on its settings. */
export function NewProjectPage() {
  const { state } = useAuth();
  const navigate = useNavigate();
  const handleError = useApiErrorHandler();
  const [draft, setDraft] = useState<SettingsDraft>(() => toDraft(DEFAULT_SETTINGS));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (state.status === "authenticated" && !canCreateProjects(state.user)) {
    return (
      <main className="page page-narrow">
        <div className="card">
          <h1>New project</h1>
          <p className="error" role="alert">
            You may not create projects. Ask a site admin for the “Can add project” permission.
          </p>
          <Link to="/projects">← Your projects</Link>
        </div>
      </main>
    );
  }

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    if (!draft.name.trim()) {
      setErrors({ name: "A project needs a name." });
      return;
    }
    const settings = fromDraft(draft);
    setBusy(true);
    setErrors({});
    setMessage(null);
    try {
      const project = await adminApi.createProject({
        name: settings.name.trim(),
        description: settings.description,
        instructions: settings.instructions,
        overlap_k: settings.overlap_k,
      });
      navigate(`/projects/${project.id}/settings`);
    } catch (err) {
      const error = handleError(err);
      setErrors(fieldErrors(error));
      setMessage(error.message);
      setBusy(false);
    }
  }

  return (
    <main className="page">
      <p className="breadcrumb">
        <Link to="/projects">← Your projects</Link>
      </p>
      <form className="card admin-form" onSubmit={onSubmit} aria-label="New project" noValidate>
        <h1>New project</h1>
        <p className="muted">You become the project’s admin; every other setting can be changed later.</p>
        <SettingsFields draft={draft} onChange={setDraft} errors={errors} compact />
        {message && (
          <p className="error" role="alert">
            {message}
          </p>
        )}
        <button type="submit" className="button" disabled={busy} aria-busy={busy}>
          {busy ? "Creating…" : "Create project"}
        </button>
      </form>
    </main>
  );
}
