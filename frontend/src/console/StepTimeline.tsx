import type { ReactNode } from "react";
import { ObjectLink, type SelectionKey } from "./common";
import { formatDetailValue, formatDuration, formatWhen, humanize } from "./format";
import { ROUND_STEPS, type Round, type RoundStep, type RoundStepName } from "./types";

export const STEP_TITLES: Record<RoundStepName, string> = {
  collect: "Collect",
  export: "Export",
  reward: "Reward",
  policy: "Policy",
  generate: "Generate",
  published: "Published",
};

const STEP_DESCRIPTIONS: Record<RoundStepName, string> = {
  collect: "Collect feedback",
  export: "Export a dataset",
  reward: "Train a reward model",
  policy: "Optimize the policy",
  generate: "Generate candidates",
  published: "Published to annotators",
};

interface Ref {
  key: string;
  label: string;
  value: ReactNode;
}

/** Detail keys shown elsewhere: as links (taken from the round's own fields when it has them), or in the gate panel. */
const LINKED_KEYS = new Set(["export_id", "run_id", "artifact_id", "batch_id", "error", "gates", "overrides", "overridden"]);

function idOf(value: unknown): number | null {
  return typeof value === "number" && Number.isInteger(value) ? value : null;
}

function link(kind: SelectionKey, label: string, id: number | null): Ref[] {
  return id === null ? [] : [{ key: `${kind}-${id}`, label, value: <ObjectLink kind={kind} id={id} /> }];
}

function batch(id: number | null): Ref[] {
  return id === null ? [] : [{ key: `batch-${id}`, label: "Batch", value: `Batch #${id}` }];
}

/** The ids a step produced or used: links to the export, runs and models, and the batch. */
export function stepRefs(round: Round, step: RoundStep): Ref[] {
  const d = step.detail ?? {};
  switch (step.name) {
    case "export":
      return link("export", "Dataset export", round.dataset_export_id ?? idOf(d.export_id));
    case "reward":
      return [
        ...link("run", "Reward run", round.reward_run_id ?? idOf(d.run_id)),
        ...link("model", "Reward model", round.reward_artifact_id ?? idOf(d.artifact_id)),
      ];
    case "policy":
      return [
        ...link("run", "Policy run", round.policy_run_id ?? idOf(d.run_id)),
        ...link("model", "Policy", round.policy_artifact_id ?? idOf(d.artifact_id)),
      ];
    case "generate":
      return [
        ...link("run", "Generation run", round.generation_run_id ?? idOf(d.run_id)),
        ...batch(round.batch_id ?? idOf(d.batch_id)),
      ];
    case "published":
      return batch(round.batch_id ?? idOf(d.batch_id));
    default:
      return [];
  }
}

/** The other entries of a step's detail (judgments, rows, accuracy, kl, …), null values left out. */
function otherDetails(step: RoundStep): Ref[] {
  return Object.entries(step.detail ?? {})
    .filter(([key, value]) => !LINKED_KEYS.has(key) && value !== null && value !== undefined && value !== "")
    .map(([key, value]) => ({ key, label: humanize(key), value: formatDetailValue(value) }));
}

/** The round's steps in order (steps the server did not list are shown as pending). */
export function orderedSteps(round: Round): RoundStep[] {
  const byName = new Map((round.steps ?? []).map((s) => [s.name, s]));
  return ROUND_STEPS.map(
    (name) => byName.get(name) ?? { name, status: "pending", started_at: null, finished_at: null, detail: {} },
  );
}

function StepTimes({ step }: { step: RoundStep }) {
  if (!step.started_at && !step.finished_at) return null;
  const duration = formatDuration(step.started_at, step.finished_at);
  return (
    <p className="round-step-times muted">
      {step.started_at && (
        <>
          Started <time dateTime={step.started_at}>{formatWhen(step.started_at)}</time>
        </>
      )}
      {step.finished_at && (
        <>
          {step.started_at ? " · finished " : "Finished "}
          <time dateTime={step.finished_at}>{formatWhen(step.finished_at)}</time>
        </>
      )}
      {duration && ` (${duration})`}
    </p>
  );
}

/** collect → export → reward → policy → generate → published, each with its status, times and details. */
export function StepTimeline({ round }: { round: Round }) {
  return (
    <ol className="round-steps" aria-label={`Steps of round ${round.number}`} data-testid="round-steps">
      {orderedSteps(round).map((step) => {
        const refs = [...stepRefs(round, step), ...otherDetails(step)];
        const error = typeof step.detail?.error === "string" ? step.detail.error : "";
        const current = round.step === step.name;
        return (
          <li
            key={step.name}
            className={`round-step round-step-${step.status}`}
            data-testid={`round-step-${step.name}`}
            data-status={step.status}
            aria-current={current ? "step" : undefined}
          >
            <span className="round-step-marker" aria-hidden="true" />
            <div className="round-step-body">
              <p className="round-step-head">
                <span className="round-step-name">{STEP_TITLES[step.name]}</span>{" "}
                <span className="round-step-label muted">{step.label || STEP_DESCRIPTIONS[step.name]}</span>{" "}
                <span
                  className={`badge status-badge status-${step.status} round-step-status`}
                  data-testid={`round-step-status-${step.name}`}
                >
                  {step.status}
                </span>
              </p>
              <StepTimes step={step} />
              {refs.length > 0 && (
                <dl className="round-step-detail">
                  {refs.map((ref) => (
                    <div key={ref.key}>
                      <dt>{ref.label}</dt>
                      <dd>{ref.value}</dd>
                    </div>
                  ))}
                </dl>
              )}
              {error && <p className="round-step-error">{error}</p>}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
