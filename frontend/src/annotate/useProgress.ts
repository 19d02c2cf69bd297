import { useEffect, useState } from "react";
import { api, type Progress } from "../api";

/** GET /api/projects/{id}/progress/, reloaded whenever `version` changes; null until loaded or on error. */
export function useProgress(projectId: number, version: number): Progress | null {
  const [progress, setProgress] = useState<Progress | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    api
      .progress(projectId, controller.signal)
      .then(setProgress)
      .catch(() => {
        // Progress is informational; keep showing the last numbers.
      });
    return () => controller.abort();
  }, [projectId, version]);

  return progress;
}
