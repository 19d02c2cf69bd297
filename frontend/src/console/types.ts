// Types of the ML console's API (RLHF rounds, training runs, the model registry and
// dataset exports). Times are ISO 8601 strings; ids that may be missing are null.

export type RoundStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export type RoundStepName = "collect" | "export" | "reward" | "policy" | "generate" | "published";
export type StepStatus = "pending" | "running" | "done" | "failed" | "skipped" | "cancelled";
export type Algorithm = "ppo" | "grpo" | "rloo" | "dpo";

export const ALGORITHMS: Algorithm[] = ["ppo", "grpo", "rloo", "dpo"];
export const ROUND_STEPS: RoundStepName[] = ["collect", "export", "reward", "policy", "generate", "published"];

/** A round's settings; the server may add options of its own (kept as they come). */
export interface RoundConfig {
  algorithm: Algorithm;
  accumulate: boolean;
  export: Record<string, unknown>;
  reward: Record<string, unknown>;
  policy: Record<string, unknown>;
  generation: Record<string, unknown>;
  /** Thresholds a round must pass before it publishes (see training/round_gates.py). */
  gates?: Record<string, unknown>;
  prompt_ids: number[];
  [option: string]: unknown;
}

export interface RoundStep {
  name: RoundStepName;
  /** A readable name ("Train a reward model"), when the server sends one. */
  label?: string;
  status: StepStatus;
  started_at: string | null;
  finished_at: string | null;
  detail: Record<string, unknown>;
}

/** Annotators' preference for the new policy over the previous one (ties count ½). */
export interface WinRate {
  n: number;
  wins: number;
  ties: number;
  /** 0…1; null while no pair has been judged. */
  win_rate: number | null;
  ci_low: number | null;
  ci_high: number | null;
  /** The reward model's predicted win rate on the same pairs. */
  predicted: number | null;
}

export interface Round {
  id: number;
  number: number;
  status: RoundStatus;
  step: RoundStepName;
  steps: RoundStep[];
  config: RoundConfig;
  base_policy_id: number | null;
  dataset_export_id: number | null;
  reward_run_id: number | null;
  reward_artifact_id: number | null;
  policy_run_id: number | null;
  policy_artifact_id: number | null;
  generation_run_id: number | null;
  batch_id: number | null;
  win_rate: WinRate | null;
  error: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface RoundDefaults {
  base_policy: number | null;
  config: RoundConfig;
}

export interface StartRoundBody {
  base_policy: number | null;
  config: RoundConfig;
}

export type RunKind = "reward" | "ppo" | "grpo" | "rloo" | "dpo" | "generate";
export type RunStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface TrainingRun {
  id: number;
  project_id: number;
  kind: RunKind;
  status: RunStatus;
  config: Record<string, unknown>;
  dataset_export_id: number | null;
  base_artifact_id: number | null;
  reward_artifact_id: number | null;
  compare_artifact_id: number | null;
  prompt_count: number;
  output_artifact_id: number | null;
  output_batch_id: number | null;
  /** 0…1 */
  progress: number;
  metrics: Record<string, unknown>;
  error: string;
  worker: string;
  attempts: number;
  cancel_requested: boolean;
  heartbeat_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  created_at: string;
}

/** One logged step of a run; `values` are numbers (other values are ignored by the charts). */
export interface MetricRow {
  step: number;
  values: Record<string, unknown>;
  created_at: string;
}

export type ArtifactKind = "tokenizer" | "policy" | "reward" | "value";

export interface Artifact {
  id: number;
  name: string;
  kind: ArtifactKind;
  path: string;
  parent_id: number | null;
  project_id: number | null;
  dataset_export_id: number | null;
  metrics: Record<string, unknown>;
  size_bytes: number;
  sha256: string;
  created_at: string;
}

export type ExportStatus = "queued" | "running" | "succeeded" | "failed";

export interface ExportFile {
  sha256?: string;
  bytes?: number;
  rows?: number;
  /** Absent for "hf" (a folder on the server, not a download). */
  url?: string;
}

/** A dataset export (annotation/serializers.py DatasetExportSerializer). */
export interface DatasetExport {
  id: number;
  project_id: number;
  status: ExportStatus;
  progress: number;
  error: string;
  filters: Record<string, unknown>;
  counts: Record<string, unknown>;
  train_rows: number;
  test_rows: number;
  files: Record<string, ExportFile>;
  created_by: string;
  created_at: string;
  finished_at: string | null;
}

export type Consensus = "majority" | "dawid_skene";
export type TiePolicy = "exclude" | "keep";
export type ExportFormat = "jsonl" | "parquet" | "hf";
export const EXPORT_FORMATS: ExportFormat[] = ["jsonl", "parquet", "hf"];

/** POST /api/projects/{id}/exports/ — every option optional (annotation/export_options.py). */
export interface ExportRequest {
  test_fraction?: number;
  min_votes?: number;
  consensus?: Consensus;
  ties?: TiePolicy;
  formats?: ExportFormat[];
  judged_after?: string;
}

export interface JudgmentSummary {
  count: number;
  annotators: number;
  first_at: string | null;
  last_at: string | null;
}

export interface Lineage {
  artifact: Artifact;
  /** Parent first, then its parent, … up to the base model. */
  ancestors: Artifact[];
  run: TrainingRun | null;
  dataset_export: DatasetExport | null;
  judgments: JudgmentSummary | null;
  round: { id: number; number: number } | null;
}
