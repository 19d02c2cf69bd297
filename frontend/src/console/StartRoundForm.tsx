import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from "react";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { FieldError, LoadError, Loading, SubmitError } from "./common";
import { consoleApi } from "./consoleApi";
import { fieldErrors } from "./format";
import { ALGORITHMS, type Algorithm, type Artifact, type Round, type RoundConfig, type RoundDefaults } from "./types";
import { useLoad } from "./useLoad";

export const SECTIONS = ["export", "reward", "policy", "generation", "gates"] as const;
export type Section = (typeof SECTIONS)[number];

const SECTION_LABELS: Record<Section, string> = {
  export: "Export config (JSON)",
  reward: "Reward config (JSON)",
  policy: "Policy config (JSON)",
  generation: "Generation config (JSON)",
  gates: "Gates before publishing (JSON; 0 turns a gate off)",
};

const ALGORITHM_LABELS: Record<Algorithm, string> = {
  ppo: "PPO",
  grpo: "GRPO",
  rloo: "RLOO",
  dpo: "DPO",
};

/** The fields of the form the server's field errors can name. */
const FORM_FIELDS = ["base_policy", "algorithm", "accumulate", ...SECTIONS];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses a config textarea: the object, or a message saying what is wrong. */
export function parseJsonObject(text: string, label: string): { value: Record<string, unknown> } | { error: string } {
  const trimmed = text.trim();
  if (!trimmed) return { value: {} };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { error: `${label} is not valid JSON: ${reason}` };
  }
  if (!isRecord(value)) return { error: `${label} must be a JSON object ({ … }).` };
  return { value };
}

function pretty(value: unknown): string {
  return JSON.stringify(isRecord(value) ? value : {}, null, 2);
}

interface Draft {
  algorithm: Algorithm;
  basePolicy: string;
  accumulate: boolean;
  texts: Record<Section, string>;
}

function draftFrom(defaults: RoundDefaults): Draft {
  const config = defaults.config;
  return {
    algorithm: ALGORITHMS.includes(config.algorithm) ? config.algorithm : "ppo",
    basePolicy: defaults.base_policy === null || defaults.base_policy === undefined ? "" : String(defaults.base_policy),
    accumulate: Boolean(config.accumulate),
    texts: {
      export: pretty(config.export),
      reward: pretty(config.reward),
      policy: pretty(config.policy),
      generation: pretty(config.generation),
      gates: pretty(config.gates ?? {}),
    },
  };
}

export interface StartRoundFormProps {
  projectId: number;
  onStarted(round: Round): void;
  onClose(): void;
}

/** "Start a round": algorithm, base policy, accumulate, and each step's config as JSON (from the defaults). */
export function StartRoundForm({ projectId, onStarted, onClose }: StartRoundFormProps) {
  const handleError = useApiErrorHandler();
  const formId = useId();
  const loadDefaults = useCallback((signal: AbortSignal) => consoleApi.roundDefaults(projectId, signal), [projectId]);
  const loadArtifacts = useCallback((signal: AbortSignal) => consoleApi.artifacts(projectId, signal), [projectId]);
  const defaults = useLoad(loadDefaults);
  const artifacts = useLoad(loadArtifacts);

  const [draft, setDraft] = useState<Draft | null>(null);
  const [jsonErrors, setJsonErrors] = useState<Partial<Record<Section, string>>>({});
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [advancedOpen, setAdvancedOpen] = useState(false);
  const textareas = useRef<Partial<Record<Section, HTMLTextAreaElement | null>>>({});

  const defaultsState = defaults.state;
  useEffect(() => {
    if (defaultsState.status === "loaded") {
      const loaded = defaultsState.data;
      setDraft((d) => d ?? draftFrom(loaded));
    }
  }, [defaultsState]);

  if (defaults.state.status === "error") {
    return (
      <div className="card start-round">
        <h2 className="console-detail-title">Start a round</h2>
        <LoadError error={defaults.state.error} onRetry={defaults.reload} />
        <button type="button" className="button button-secondary" onClick={onClose}>
          Close
        </button>
      </div>
    );
  }
  if (defaults.state.status === "loading" || !draft) {
    return (
      <div className="card start-round">
        <Loading>Loading round defaults…</Loading>
      </div>
    );
  }

  const base = defaults.state.data;
  const serverErrors = fieldErrors(submitError, ["config"]);
  const shownKeys = [...FORM_FIELDS, ...(isRecord(submitError?.extra.fields) && isRecord(submitError.extra.fields.config) ? ["config"] : [])];
  const policies: Artifact[] = artifacts.state.status === "loaded" ? artifacts.state.data.filter((a) => a.kind === "policy") : [];
  const knownPolicy = draft.basePolicy === "" || policies.some((p) => String(p.id) === draft.basePolicy);

  const set = (change: Partial<Draft>) => setDraft({ ...draft, ...change });
  const setText = (section: Section, text: string) => {
    setDraft({ ...draft, texts: { ...draft.texts, [section]: text } });
    if (jsonErrors[section]) setJsonErrors({ ...jsonErrors, [section]: undefined });
  };
  const errorId = (field: string) => `${formId}-${field}-error`;
  const describedBy = (field: string, messages: string[] | string | undefined) =>
    messages && messages.length > 0 ? errorId(field) : undefined;

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (!draft || submitting) return;
    const parsed: Partial<Record<Section, Record<string, unknown>>> = {};
    const errors: Partial<Record<Section, string>> = {};
    for (const section of SECTIONS) {
      const result = parseJsonObject(draft.texts[section], SECTION_LABELS[section].replace(" (JSON)", ""));
      if ("error" in result) errors[section] = result.error;
      else parsed[section] = result.value;
    }
    const invalid = SECTIONS.filter((s) => errors[s]);
    setJsonErrors(errors);
    if (invalid.length > 0) {
      setAdvancedOpen(true);
      setSubmitError(null);
      // Let the details open before focusing the first bad field.
      window.setTimeout(() => textareas.current[invalid[0]!]?.focus(), 0);
      return;
    }
    const config: RoundConfig = {
      ...base.config,
      algorithm: draft.algorithm,
      accumulate: draft.accumulate,
      export: parsed.export!,
      reward: parsed.reward!,
      policy: parsed.policy!,
      generation: parsed.generation!,
      gates: parsed.gates!,
    };
    setSubmitting(true);
    setSubmitError(null);
    try {
      const round = await consoleApi.startRound(projectId, {
        base_policy: draft.basePolicy === "" ? null : Number(draft.basePolicy),
        config,
      });
      onStarted(round);
    } catch (err) {
      const error = handleError(err);
      setSubmitError(error);
      if (SECTIONS.some((s) => fieldErrors(error, ["config"])[s])) setAdvancedOpen(true);
    } finally {
      setSubmitting(false);
    }
  }

  const jsonInvalid = SECTIONS.filter((s) => jsonErrors[s]);

  return (
    <form
      className="card console-form start-round"
      aria-labelledby={`${formId}-title`}
      data-testid="start-round-form"
      onSubmit={(e) => void onSubmit(e)}
      noValidate
    >
      <h2 id={`${formId}-title`} className="console-detail-title">
        Start a round
      </h2>
      <p className="muted">
        Exports the feedback, trains a reward model, optimizes the policy and publishes its candidates against the
        previous policy for annotators to judge.
      </p>

      <div className="console-form-grid">
        <div className="console-field">
          <label htmlFor={`${formId}-algorithm`}>Algorithm</label>
          <select
            id={`${formId}-algorithm`}
            value={draft.algorithm}
            onChange={(e) => set({ algorithm: e.target.value as Algorithm })}
            aria-invalid={serverErrors.algorithm ? true : undefined}
            aria-describedby={describedBy("algorithm", serverErrors.algorithm)}
          >
            {ALGORITHMS.map((a) => (
              <option key={a} value={a}>
                {ALGORITHM_LABELS[a]}
              </option>
            ))}
          </select>
          <FieldError id={errorId("algorithm")} messages={serverErrors.algorithm} />
        </div>

        <div className="console-field">
          <label htmlFor={`${formId}-base-policy`}>Base policy</label>
          <select
            id={`${formId}-base-policy`}
            value={draft.basePolicy}
            onChange={(e) => set({ basePolicy: e.target.value })}
            aria-invalid={serverErrors.base_policy ? true : undefined}
            aria-describedby={describedBy("base_policy", serverErrors.base_policy)}
          >
            <option value="">Default (the last published round's policy)</option>
            {!knownPolicy && <option value={draft.basePolicy}>{`Model #${draft.basePolicy}`}</option>}
            {policies.map((p) => (
              <option key={p.id} value={String(p.id)}>
                {`${p.name} (#${p.id})`}
              </option>
            ))}
          </select>
          {artifacts.state.status === "error" && (
            <p className="field-note muted">Could not load the models: {artifacts.state.error.message}</p>
          )}
          <FieldError id={errorId("base_policy")} messages={serverErrors.base_policy} />
        </div>

        <div className="console-field console-field-check">
          <input
            id={`${formId}-accumulate`}
            type="checkbox"
            checked={draft.accumulate}
            onChange={(e) => set({ accumulate: e.target.checked })}
            aria-describedby={`${formId}-accumulate-help`}
          />
          <label htmlFor={`${formId}-accumulate`}>Accumulate feedback</label>
          <p id={`${formId}-accumulate-help`} className="field-note muted">
            Train on all judgments so far instead of only those since the previous round.
          </p>
          <FieldError id={errorId("accumulate")} messages={serverErrors.accumulate} />
        </div>
      </div>

      <details className="advanced" open={advancedOpen} onToggle={(e) => setAdvancedOpen(e.currentTarget.open)}>
        <summary>Advanced</summary>
        <div className="advanced-fields">
          {SECTIONS.map((section) => {
            const messages = [...(jsonErrors[section] ? [jsonErrors[section]!] : []), ...(serverErrors[section] ?? [])];
            return (
              <div className="console-field" key={section}>
                <label htmlFor={`${formId}-${section}`}>{SECTION_LABELS[section]}</label>
                <textarea
                  id={`${formId}-${section}`}
                  ref={(el) => {
                    textareas.current[section] = el;
                  }}
                  className="json-input"
                  rows={6}
                  spellCheck={false}
                  value={draft.texts[section]}
                  onChange={(e) => setText(section, e.target.value)}
                  aria-invalid={messages.length > 0 ? true : undefined}
                  aria-describedby={describedBy(section, messages)}
                  data-testid={`config-${section}`}
                />
                <FieldError id={errorId(section)} messages={messages} />
              </div>
            );
          })}
        </div>
      </details>

      {jsonInvalid.length > 0 && (
        <p className="error" role="alert" data-testid="json-error">
          Fix the JSON of {jsonInvalid.map((s) => SECTION_LABELS[s].replace(" (JSON)", "").toLowerCase()).join(", ")} before
          starting.
        </p>
      )}
      <SubmitError error={submitError} shown={shownKeys} />

      <div className="console-form-actions">
        <button type="submit" className="button" disabled={submitting} aria-busy={submitting}>
          Start
        </button>
        <button type="button" className="button button-secondary" onClick={onClose}>
          Close
        </button>
        {submitting && (
          <span className="muted" role="status">
            Starting…
          </span>
        )}
      </div>
    </form>
  );
}
