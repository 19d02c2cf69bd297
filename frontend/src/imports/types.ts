// Types of the import job API (/api/projects/{id}/import-jobs/), written by hand.

export type ImportJobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export type Pairing = "all_pairs" | "random_pairs" | "adjacent";

export interface ImportJobOptions {
  pairing: Pairing;
  pairs_per_prompt: number;
  skip_bad_lines: boolean;
  batch_name: string;
  seed: number;
}

export interface BadLine {
  line: number;
  message: string;
}

/** One import job. `progress` is the share of the file read, 0…1 (1 once it succeeded). */
export interface ImportJob {
  id: number;
  project_id: number;
  status: ImportJobStatus;
  progress: number;
  original_name: string;
  size_bytes: number;
  bytes_read: number;
  lines_read: number;
  options: ImportJobOptions;
  records_imported: number;
  prompts_created: number;
  responses_created: number;
  comparisons_created: number;
  comparisons_existing: number;
  bad_line_count: number;
  /** The first bad lines (all of them are in the download); absent in the list. */
  bad_lines?: BadLine[];
  batch_id: number | null;
  error: string;
  cancel_requested: boolean;
  created_by: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  bad_lines_url: string;
}

export interface ImportRequest {
  file: File;
  pairing: Pairing;
  pairs_per_prompt: number;
  skip_bad_lines: boolean;
  batch_name: string;
}

export function isActive(job: ImportJob): boolean {
  return job.status === "queued" || job.status === "running";
}
