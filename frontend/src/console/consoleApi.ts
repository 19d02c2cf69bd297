// The ML console's endpoints, on top of the shared fetch client (session cookie, CSRF
// header, errors thrown as ApiError {code, message, extra}).

import { request } from "../api";
import type {
  Artifact,
  DatasetExport,
  ExportRequest,
  Lineage,
  MetricRow,
  ModelRegistration,
  RegisterModelBody,
  Round,
  RoundDefaults,
  StartRoundBody,
  TrainingRun,
} from "./types";

const base = (projectId: number) => `/api/projects/${projectId}`;

async function list<T>(path: string, signal?: AbortSignal): Promise<T[]> {
  const data = await request<{ results: T[] }>(path, { signal });
  return data.results;
}

/** The download URL of one file of an export. */
export function exportFileUrl(projectId: number, exportId: number, name: string): string {
  return `${base(projectId)}/exports/${exportId}/files/${encodeURIComponent(name)}`;
}

export const consoleApi = {
  rounds(projectId: number, signal?: AbortSignal): Promise<Round[]> {
    return list<Round>(`${base(projectId)}/rounds/`, signal);
  },

  round(projectId: number, roundId: number, signal?: AbortSignal): Promise<Round> {
    return request<Round>(`${base(projectId)}/rounds/${roundId}/`, { signal });
  },

  roundDefaults(projectId: number, signal?: AbortSignal): Promise<RoundDefaults> {
    return request<RoundDefaults>(`${base(projectId)}/rounds/defaults/`, { signal });
  },

  /** 201 with the new round; 400 "invalid…" with `extra.fields` for a bad config. */
  startRound(projectId: number, body: StartRoundBody): Promise<Round> {
    return request<Round>(`${base(projectId)}/rounds/`, { method: "POST", body });
  },

  cancelRound(projectId: number, roundId: number): Promise<Round> {
    return request<Round>(`${base(projectId)}/rounds/${roundId}/cancel/`, { method: "POST" });
  },

  retryRound(projectId: number, roundId: number): Promise<Round> {
    return request<Round>(`${base(projectId)}/rounds/${roundId}/retry/`, { method: "POST" });
  },

  /** Publish anyway: a round a gate stopped goes on, the reason recorded (400 without one). */
  overrideRound(projectId: number, roundId: number, reason: string): Promise<Round> {
    return request<Round>(`${base(projectId)}/rounds/${roundId}/override/`, { method: "POST", body: { reason } });
  },

  runs(projectId: number, signal?: AbortSignal): Promise<TrainingRun[]> {
    return list<TrainingRun>(`${base(projectId)}/training-runs/`, signal);
  },

  run(projectId: number, runId: number, signal?: AbortSignal): Promise<TrainingRun> {
    return request<TrainingRun>(`${base(projectId)}/training-runs/${runId}/`, { signal });
  },

  cancelRun(projectId: number, runId: number): Promise<TrainingRun> {
    return request<TrainingRun>(`${base(projectId)}/training-runs/${runId}/cancel/`, { method: "POST" });
  },

  /** The run's metric rows in step order; with `after`, only the rows of later steps. */
  metrics(projectId: number, runId: number, after: number | null, signal?: AbortSignal): Promise<MetricRow[]> {
    const query = after === null ? "" : `?after=${after}`;
    return list<MetricRow>(`${base(projectId)}/training-runs/${runId}/metrics/${query}`, signal);
  },

  artifacts(projectId: number, signal?: AbortSignal): Promise<Artifact[]> {
    return list<Artifact>(`${base(projectId)}/artifacts/`, signal);
  },

  /** 202 with the pending registration (validated by a task); 400 with the reason for a bad path. */
  registerModel(projectId: number, body: RegisterModelBody): Promise<ModelRegistration> {
    return request<ModelRegistration>(`${base(projectId)}/artifacts/`, { method: "POST", body });
  },

  registration(projectId: number, registrationId: number, signal?: AbortSignal): Promise<ModelRegistration> {
    return request<ModelRegistration>(`${base(projectId)}/artifact-registrations/${registrationId}/`, { signal });
  },

  lineage(projectId: number, artifactId: number, signal?: AbortSignal): Promise<Lineage> {
    return request<Lineage>(`${base(projectId)}/artifacts/${artifactId}/lineage/`, { signal });
  },

  exports(projectId: number, signal?: AbortSignal): Promise<DatasetExport[]> {
    return list<DatasetExport>(`${base(projectId)}/exports/`, signal);
  },

  /** 201 (written at once) or 202 (queued); 400 with `extra.fields` for bad options. */
  createExport(projectId: number, body: ExportRequest): Promise<DatasetExport> {
    return request<DatasetExport>(`${base(projectId)}/exports/`, { method: "POST", body });
  },
};
