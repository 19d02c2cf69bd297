import { useId } from "react";
import type { RationaleMode } from "../api";
import { Markdown } from "../components/Markdown";
import type { ProjectSettings } from "./types";

/** The form's values: numbers are kept as typed text until the form is sent. */
export type SettingsDraft = { [K in keyof ProjectSettings]: ProjectSettings[K] extends number ? string : ProjectSettings[K] };

const NUMBER_FIELDS = [
  "overlap_k",
  "lease_ttl_seconds",
  "gold_rate",
  "min_gold_accuracy",
  "min_consensus_agreement",
  "min_median_seconds",
  "max_position_p_value",
] as const;

export function toDraft(settings: ProjectSettings): SettingsDraft {
  const draft = { ...settings } as unknown as Record<string, unknown>;
  for (const key of NUMBER_FIELDS) draft[key] = String(settings[key]);
  return draft as SettingsDraft;
}

/**
 * The draft as settings to send. Text that is not a number is sent as it was typed, so
 * the server answers with the field's own message (the client does not guess the rules).
 */
export function fromDraft(draft: SettingsDraft): ProjectSettings {
  const out = { ...draft } as unknown as Record<string, unknown>;
  for (const key of NUMBER_FIELDS) {
    const text = draft[key].trim();
    const value = Number(text);
    out[key] = text !== "" && Number.isFinite(value) ? value : text;
  }
  return out as unknown as ProjectSettings;
}

/** Only the settings that differ from `before`. */
export function changedSettings(after: ProjectSettings, before: ProjectSettings): Partial<ProjectSettings> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(after) as (keyof ProjectSettings)[]) {
    if (after[key] !== before[key]) out[key] = after[key];
  }
  return out as Partial<ProjectSettings>;
}

function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p className="error field-error" id={id}>
      {message}
    </p>
  );
}

interface Props {
  draft: SettingsDraft;
  onChange(draft: SettingsDraft): void;
  errors: Record<string, string>;
  /** The new-project form shows the essentials only. */
  compact?: boolean;
}

/** Labelled inputs for a project's settings, with a live preview of the instructions. */
export function SettingsFields({ draft, onChange, errors, compact = false }: Props) {
  const id = useId();
  const set = <K extends keyof SettingsDraft>(key: K, value: SettingsDraft[K]) => onChange({ ...draft, [key]: value });

  const text = (key: "name" | "description", label: string, multiline = false) => (
    <div className="admin-field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      {multiline ? (
        <textarea
          id={`${id}-${key}`}
          rows={2}
          value={draft[key]}
          aria-invalid={Boolean(errors[key])}
          aria-describedby={errors[key] ? `${id}-${key}-error` : undefined}
          onChange={(e) => set(key, e.target.value)}
        />
      ) : (
        <input
          id={`${id}-${key}`}
          value={draft[key]}
          aria-invalid={Boolean(errors[key])}
          aria-describedby={errors[key] ? `${id}-${key}-error` : undefined}
          onChange={(e) => set(key, e.target.value)}
        />
      )}
      <FieldError id={`${id}-${key}-error`} message={errors[key]} />
    </div>
  );

  const number = (key: (typeof NUMBER_FIELDS)[number], label: string, hint: string, step = "any") => (
    <div className="admin-field">
      <label htmlFor={`${id}-${key}`}>{label}</label>
      <input
        id={`${id}-${key}`}
        type="number"
        step={step}
        value={draft[key]}
        aria-invalid={Boolean(errors[key])}
        aria-describedby={`${id}-${key}-hint`}
        onChange={(e) => set(key, e.target.value)}
      />
      <span className="muted admin-hint" id={`${id}-${key}-hint`}>
        {hint}
      </span>
      <FieldError id={`${id}-${key}-error`} message={errors[key]} />
    </div>
  );

  const check = (key: "allow_tie" | "allow_both_bad" | "strength_scale", label: string) => (
    <label className="admin-check">
      <input type="checkbox" checked={draft[key]} onChange={(e) => set(key, e.target.checked)} /> {label}
      <FieldError id={`${id}-${key}-error`} message={errors[key]} />
    </label>
  );

  return (
    <>
      {text("name", "Name")}
      {text("description", "Description", true)}
      <div className="admin-field">
        <label htmlFor={`${id}-instructions`}>Instructions (markdown)</label>
        <div className="admin-markdown-editor">
          <textarea
            id={`${id}-instructions`}
            rows={10}
            value={draft.instructions}
            aria-invalid={Boolean(errors.instructions)}
            onChange={(e) => set("instructions", e.target.value)}
          />
          <section className="admin-preview" aria-label="Instructions preview">
            {draft.instructions.trim() ? (
              <Markdown source={draft.instructions} />
            ) : (
              <p className="muted">The preview of the instructions appears here.</p>
            )}
          </section>
        </div>
        <FieldError id={`${id}-instructions-error`} message={errors.instructions} />
      </div>
      {number("overlap_k", "Judgments per comparison (k)", "Distinct annotators per comparison, 1–50.", "1")}
      {!compact && (
        <>
          {number("lease_ttl_seconds", "Lease time (seconds)", "How long an annotator holds an item, 30–86400.", "1")}
          <fieldset className="admin-fieldset">
            <legend>Label scheme</legend>
            {check("allow_tie", "Allow “tie”")}
            {check("allow_both_bad", "Allow “both bad”")}
            {check("strength_scale", "Ask for strength (significantly / better / slightly / negligibly)")}
            <div className="admin-field">
              <label htmlFor={`${id}-rationale_mode`}>Rationale</label>
              <select
                id={`${id}-rationale_mode`}
                value={draft.rationale_mode}
                onChange={(e) => set("rationale_mode", e.target.value as RationaleMode)}
              >
                <option value="off">Off</option>
                <option value="optional">Optional</option>
                <option value="required">Required</option>
              </select>
              <FieldError id={`${id}-rationale_mode-error`} message={errors.rationale_mode} />
            </div>
          </fieldset>
          {number("gold_rate", "Gold rate", "Share of items served from the gold set, 0–1.")}
          <fieldset className="admin-fieldset">
            <legend>Quality flags</legend>
            {number("min_gold_accuracy", "Minimum gold accuracy", "0–1.")}
            {number("min_consensus_agreement", "Minimum agreement with the majority", "0–1.")}
            {number("min_median_seconds", "Minimum median seconds per judgment", "0–3600.")}
            {number("max_position_p_value", "Position-bias p-value threshold", "0–1.")}
          </fieldset>
        </>
      )}
    </>
  );
}
