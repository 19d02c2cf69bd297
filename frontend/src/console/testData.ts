// Fixtures of the ML console's tests (not imported by the app).

import type { ProjectDetail } from "../api";
import { ROUND_STEPS, type Artifact, type DatasetExport, type Lineage, type Round, type RoundConfig, type RoundStep, type TrainingRun } from "./types";

export const mlUser = { id: 5, username: "mel", is_superuser: false, roles: ["ml_engineer"] };

export const mlProject: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "",
  instructions: "",
  role: "ml_engineer",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: true,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0.05,
  created_at: "2025-01-02T10:00:00Z",
};

/** What every console page loads first: the signed-in ML engineer and project 3. */
export const consoleRoutes = {
  "GET /api/auth/me/": { body: mlUser },
  "GET /api/projects/3/": { body: mlProject },
};

export const defaultConfig: RoundConfig = {
  algorithm: "ppo",
  accumulate: false,
  min_judgments: 1,
  export: { test_fraction: 0.1 },
  reward: { epochs: 1 },
  policy: { steps: 20 },
  generation: { sampling: { n: 1, max_new_tokens: 64 }, pairs_per_prompt: 1 },
  prompt_ids: [],
  gates: { min_test_rows: 10, min_reward_accuracy: 0.55 },
};

export function steps(statuses: Partial<Record<RoundStep["name"], Partial<RoundStep>>> = {}): RoundStep[] {
  return ROUND_STEPS.map((name) => ({
    name,
    status: "pending",
    started_at: null,
    finished_at: null,
    detail: {},
    ...statuses[name],
  }));
}

export function round(id: number, extra: Partial<Round> = {}): Round {
  return {
    id,
    number: id,
    status: "queued",
    step: "collect",
    steps: steps(),
    config: defaultConfig,
    base_policy_id: 1,
    dataset_export_id: null,
    reward_run_id: null,
    reward_artifact_id: null,
    policy_run_id: null,
    policy_artifact_id: null,
    generation_run_id: null,
    batch_id: null,
    win_rate: null,
    error: "",
    created_at: "2025-03-20T10:00:00Z",
    started_at: null,
    finished_at: null,
    ...extra,
  };
}

/** A published round with every step done and a measured win rate. */
export const finishedRound: Round = round(2, {
  status: "succeeded",
  step: "published",
  steps: steps({
    collect: { status: "done", started_at: "2025-03-21T10:00:00Z", finished_at: "2025-03-21T10:00:05Z", detail: { judgments: 420 } },
    export: { status: "done", detail: { export_id: 7, train_rows: 380, test_rows: 40 } },
    reward: { status: "done", detail: { run_id: 11, artifact_id: 21, eval_accuracy: 0.71 } },
    policy: { status: "done", detail: { run_id: 12, artifact_id: 22, kl: 0.08, reward: 1.25 } },
    generate: { status: "done", detail: { run_id: 13, batch_id: 9, comparisons: 64 } },
    published: { status: "done", detail: { batch_id: 9 } },
  }),
  dataset_export_id: 7,
  reward_run_id: 11,
  reward_artifact_id: 21,
  policy_run_id: 12,
  policy_artifact_id: 22,
  generation_run_id: 13,
  batch_id: 9,
  win_rate: { n: 120, wins: 70, ties: 10, win_rate: 0.625, ci_low: 0.54, ci_high: 0.7, predicted: 0.86 },
  started_at: "2025-03-21T10:00:00Z",
  finished_at: "2025-03-21T12:00:00Z",
});

export function run(id: number, extra: Partial<TrainingRun> = {}): TrainingRun {
  return {
    id,
    project_id: 3,
    kind: "ppo",
    status: "running",
    config: { steps: 20, learning_rate: 1e-5 },
    dataset_export_id: null,
    base_artifact_id: 1,
    reward_artifact_id: 21,
    compare_artifact_id: null,
    prompt_count: 32,
    output_artifact_id: null,
    output_batch_id: null,
    progress: 0.4,
    metrics: {},
    error: "",
    worker: "gpu-1",
    launcher: "inprocess",
    launcher_options: {},
    attempts: 1,
    cancel_requested: false,
    heartbeat_at: null,
    started_at: "2025-03-21T10:00:00Z",
    finished_at: null,
    created_at: "2025-03-21T09:59:00Z",
    ...extra,
  };
}

export function artifact(id: number, extra: Partial<Artifact> = {}): Artifact {
  return {
    id,
    name: `model-${id}`,
    kind: "policy",
    path: `models/${id}`,
    origin: "preflab",
    parent_id: null,
    project_id: 3,
    dataset_export_id: null,
    metrics: {},
    model_info: {},
    size_bytes: 1536 * 1024 * 1024,
    sha256: "abcdef0123456789",
    created_at: "2025-03-01T10:00:00Z",
    ...extra,
  };
}

export function datasetExport(id: number, extra: Partial<DatasetExport> = {}): DatasetExport {
  return {
    id,
    project_id: 3,
    status: "succeeded",
    progress: 1,
    error: "",
    filters: {},
    counts: {},
    train_rows: 380,
    test_rows: 40,
    files: {
      "train.jsonl": { sha256: "a", bytes: 2048, rows: 380, url: `/api/projects/3/exports/${id}/files/train.jsonl` },
      "test.jsonl": { sha256: "b", bytes: 512, rows: 40, url: `/api/projects/3/exports/${id}/files/test.jsonl` },
    },
    created_by: "mel",
    created_at: "2025-03-21T10:00:00Z",
    finished_at: "2025-03-21T10:00:03Z",
    ...extra,
  };
}

export const lineage: Lineage = {
  artifact: artifact(22, { name: "policy-round-2", parent_id: 1 }),
  ancestors: [artifact(1, { name: "tiny-gpt2", project_id: null })],
  run: run(12, { status: "succeeded", output_artifact_id: 22, finished_at: "2025-03-21T11:00:00Z" }),
  dataset_export: datasetExport(7),
  judgments: { count: 420, annotators: 5, first_at: "2025-03-10T09:00:00Z", last_at: "2025-03-20T18:00:00Z" },
  round: { id: 2, number: 2 },
};
