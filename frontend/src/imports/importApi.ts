// Requests of the import page. The upload goes through XMLHttpRequest, whose upload
// progress events fetch does not have; everything else through api.ts's `request`.

import { ApiError, CSRF_COOKIE_NAME, CSRF_HEADER_NAME, getCookie, request } from "../api";
import type { ImportJob, ImportRequest } from "./types";

export function importJobsPath(projectId: number): string {
  return `/api/projects/${projectId}/import-jobs/`;
}

export function importJobPath(projectId: number, jobId: number): string {
  return `${importJobsPath(projectId)}${jobId}/`;
}

export const importApi = {
  list(projectId: number, signal?: AbortSignal): Promise<{ results: ImportJob[] }> {
    return request(importJobsPath(projectId), { signal });
  },
  get(projectId: number, jobId: number, signal?: AbortSignal): Promise<ImportJob> {
    return request(importJobPath(projectId, jobId), { signal });
  },
  cancel(projectId: number, jobId: number): Promise<ImportJob> {
    return request(`${importJobPath(projectId, jobId)}cancel/`, { method: "POST" });
  },
};

function errorOf(xhr: XMLHttpRequest): ApiError {
  let body: unknown = null;
  try {
    body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
  } catch {
    body = null;
  }
  if (body && typeof body === "object" && typeof (body as { code?: unknown }).code === "string") {
    const { code, message, extra } = body as { code: string; message?: unknown; extra?: unknown };
    return new ApiError(
      xhr.status,
      code,
      typeof message === "string" && message ? message : `Upload failed with status ${xhr.status}`,
      extra && typeof extra === "object" ? (extra as Record<string, unknown>) : {},
    );
  }
  return new ApiError(xhr.status, `http_${xhr.status}`, `Upload failed with status ${xhr.status}`);
}

/**
 * POST the file and options as multipart form data. `onProgress` gets the share of the
 * file sent (0…1). Resolves with the job (finished for small files, queued for large ones).
 */
export function uploadImport(
  projectId: number,
  data: ImportRequest,
  onProgress: (sent: number) => void,
  signal?: AbortSignal,
): Promise<ImportJob> {
  const form = new FormData();
  form.append("file", data.file, data.file.name);
  form.append("pairing", data.pairing);
  form.append("pairs_per_prompt", String(data.pairs_per_prompt));
  form.append("skip_bad_lines", data.skip_bad_lines ? "true" : "false");
  form.append("batch_name", data.batch_name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", importJobsPath(projectId));
    xhr.withCredentials = true;
    xhr.setRequestHeader("Accept", "application/json");
    const token = getCookie(CSRF_COOKIE_NAME);
    if (token) xhr.setRequestHeader(CSRF_HEADER_NAME, token);
    xhr.upload.onprogress = (event: ProgressEvent) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        try {
          resolve(JSON.parse(xhr.responseText) as ImportJob);
        } catch {
          reject(new ApiError(xhr.status, "invalid_response", "The server sent a response that is not valid JSON."));
        }
        return;
      }
      reject(errorOf(xhr));
    };
    xhr.onerror = () => reject(new ApiError(0, "network_error", "Could not reach the server. Check your connection and try again."));
    xhr.onabort = () => reject(new DOMException("The upload was aborted.", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(form);
  });
}
