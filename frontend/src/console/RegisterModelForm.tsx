import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { FieldError, ObjectLink, StatusBadge, SubmitError } from "./common";
import { consoleApi } from "./consoleApi";
import { fieldErrors } from "./format";
import type { ModelRegistration, RegistrableKind } from "./types";
import { POLL_INTERVAL_MS, usePolled } from "./useLoad";

const FORM_FIELDS = ["path", "kind", "name"];
const KIND_LABELS: Record<RegistrableKind, string> = {
  policy: "Policy (causal LM)",
  reward: "Reward model or ensemble",
  tokenizer: "Tokenizer",
};

/** Follows one registration until validation ends (registered, or failed with the reason). */
function RegistrationProgress({
  projectId,
  initial,
  pollIntervalMs,
  onDone,
}: {
  projectId: number;
  initial: ModelRegistration;
  pollIntervalMs: number;
  onDone(registration: ModelRegistration): void;
}) {
  const load = useCallback((signal: AbortSignal) => consoleApi.registration(projectId, initial.id, signal), [projectId, initial.id]);
  const { state } = usePolled(load, (r) => r.status === "pending", pollIntervalMs);
  const registration = state.status === "loaded" ? state.data : initial;
  const reported = useRef(false);
  useEffect(() => {
    if (registration.status !== "pending" && !reported.current) {
      reported.current = true;
      onDone(registration);
    }
  }, [registration, onDone]);

  return (
    <div className="registration-progress" data-testid="registration-progress" aria-live="polite">
      <p>
        <StatusBadge status={registration.status} /> <code>{registration.path}</code> as {registration.kind}
        {registration.status === "pending" && <span className="muted"> · validating (config, tokenizer, weights headers)…</span>}
        {registration.status === "registered" && registration.artifact_id !== null && (
          <>
            {" "}
            · registered as <ObjectLink kind="model" id={registration.artifact_id} />
          </>
        )}
      </p>
      {registration.status === "failed" && (
        <p className="error" role="alert">
          {registration.error}
        </p>
      )}
      {state.status === "error" && <p className="muted">Could not refresh the registration: {state.error.message}</p>}
    </div>
  );
}

/** "Register a model": an existing Hugging Face directory on a shared disk, registered in place. */
export function RegisterModelForm({
  projectId,
  onRegistered,
  onClose,
  pollIntervalMs = POLL_INTERVAL_MS,
}: {
  projectId: number;
  onRegistered(registration: ModelRegistration): void;
  onClose(): void;
  pollIntervalMs?: number;
}) {
  const handleError = useApiErrorHandler();
  const id = useId();
  const [path, setPath] = useState("");
  const [kind, setKind] = useState<RegistrableKind>("policy");
  const [name, setName] = useState("");
  const [localErrors, setLocalErrors] = useState<Record<string, string[]>>({});
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [registration, setRegistration] = useState<ModelRegistration | null>(null);

  const serverErrors = fieldErrors(submitError);
  const errorsOf = (field: string) => [...(localErrors[field] ?? []), ...(serverErrors[field] ?? [])];
  const errorId = (field: string) => `${id}-${field}-error`;
  const invalidProps = (field: string) =>
    errorsOf(field).length > 0 ? { "aria-invalid": true as const, "aria-describedby": errorId(field) } : {};

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (submitting) return;
    const trimmed = path.trim();
    if (!trimmed.startsWith("/")) {
      setLocalErrors({ path: [trimmed ? "The path must be absolute (start with /)." : "Enter the directory's absolute path."] });
      setSubmitError(null);
      return;
    }
    setLocalErrors({});
    setSubmitError(null);
    setSubmitting(true);
    try {
      const body = name.trim() ? { path: trimmed, kind, name: name.trim() } : { path: trimmed, kind };
      setRegistration(await consoleApi.registerModel(projectId, body));
    } catch (err) {
      setSubmitError(handleError(err));
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <form
      className="card console-form register-model"
      aria-labelledby={`${id}-title`}
      data-testid="register-model-form"
      onSubmit={(e) => void onSubmit(e)}
      noValidate
    >
      <h2 id={`${id}-title`} className="console-detail-title">
        Register a model
      </h2>
      <p className="muted">
        A Hugging Face directory on a disk this server shares, inside one of the allowed model roots. It is used in place (not
        copied) and validated in the background; its weights are never loaded for that.
      </p>
      <div className="console-form-grid">
        <div className="console-field">
          <label htmlFor={`${id}-path`}>Directory path</label>
          <input
            id={`${id}-path`}
            type="text"
            placeholder="/models/llama-3-8b-sft"
            value={path}
            onChange={(e) => setPath(e.target.value)}
            {...invalidProps("path")}
          />
          <FieldError id={errorId("path")} messages={errorsOf("path")} />
        </div>
        <div className="console-field">
          <label htmlFor={`${id}-kind`}>Kind</label>
          <select id={`${id}-kind`} value={kind} onChange={(e) => setKind(e.target.value as RegistrableKind)} {...invalidProps("kind")}>
            {(Object.keys(KIND_LABELS) as RegistrableKind[]).map((k) => (
              <option key={k} value={k}>
                {KIND_LABELS[k]}
              </option>
            ))}
          </select>
          <FieldError id={errorId("kind")} messages={errorsOf("kind")} />
        </div>
        <div className="console-field">
          <label htmlFor={`${id}-name`}>Name (optional)</label>
          <input
            id={`${id}-name`}
            type="text"
            maxLength={200}
            placeholder="the directory's name"
            value={name}
            onChange={(e) => setName(e.target.value)}
            {...invalidProps("name")}
          />
          <FieldError id={errorId("name")} messages={errorsOf("name")} />
        </div>
      </div>
      <SubmitError error={submitError} shown={FORM_FIELDS} />
      <div className="console-form-actions">
        <button type="submit" className="button" disabled={submitting} aria-busy={submitting}>
          Register
        </button>
        <button type="button" className="button button-secondary" onClick={onClose}>
          Close
        </button>
        {submitting && (
          <span className="muted" role="status">
            Checking the path…
          </span>
        )}
      </div>
      {registration && (
        <RegistrationProgress
          key={registration.id}
          projectId={projectId}
          initial={registration}
          pollIntervalMs={pollIntervalMs}
          onDone={onRegistered}
        />
      )}
    </form>
  );
}
