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
  /** How the step executes: inprocess, subprocess, accelerate, ray, openrlhf. */
  launcher: string;
  launcher_options: Record<string, unknown>;
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
export type RegistrableKind = "policy" | "reward" | "tokenizer";
export type RegistrationStatus = "pending" | "registered" | "failed";

/** POST /api/projects/{id}/artifacts/ — an existing model directory to register in place. */
export interface RegisterModelBody {
  path: string;
  kind: RegistrableKind;
  name?: string;
}

export interface ModelRegistration {
  id: number;
  project_id: number;
  path: string;
  kind: RegistrableKind;
  name: string;
  status: RegistrationStatus;
  /** Why validation refused the directory (failed). */
  error: string;
  info: ModelInfo | Record<string, never>;
  artifact_id: number | null;
  created_at: string;
  finished_at: string | null;
}

/** "preflab": made by Preflab's training code; "registered": an existing directory brought in. */
export type ArtifactOrigin = "preflab" | "registered";

/** What validation recorded of a registered model directory (training.model_registration.ModelInfo). */
export interface ModelInfo {
  kind: RegistrableKind;
  architecture: string | null;
  model_type: string | null;
  parameter_count: number | null;
  dtype: string | null;
  dtype_source: "safetensors" | "config" | "none";
  weights_format: "safetensors" | "pytorch" | null;
  num_labels: number | null;
  ensemble_members: string[] | null;
  vocab_size: number;
  config_vocab_size: number | null;
  has_chat_template: boolean;
  has_pad_token: boolean;
  eos_token: string | null;
  sha256: string;
  size_bytes: number;
}

export interface Artifact {
  id: number;
  name: string;
  kind: ArtifactKind;
  /** Relative to the artifact root, or absolute for a model registered in place. */
  path: string;
  origin: ArtifactOrigin;
  parent_id: number | null;
  project_id: number | null;
  dataset_export_id: number | null;
  metrics: Record<string, unknown>;
  /** Empty for Preflab's own artifacts. */
  model_info: ModelInfo | Record<string, never>;
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
