import { useCallback, useEffect, useState } from "react";
import { api, ApiError, type ProjectDetail } from "./api";
import { useApiErrorHandler } from "./auth";

export type ProjectState =
  | { status: "loading" }
  | { status: "loaded"; project: ProjectDetail }
  | { status: "error"; error: ApiError };

/** Loads GET /api/projects/{id}/; an id that is not a positive integer is a not_found error. */
export function useProject(projectId: number): [ProjectState, () => void] {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<ProjectState>({ status: "loading" });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    if (!Number.isInteger(projectId) || projectId <= 0) {
      setState({ status: "error", error: new ApiError(404, "not_found", "Not found.") });
      return;
    }
    const controller = new AbortController();
    setState({ status: "loading" });
    api
      .project(projectId, controller.signal)
      .then((project) => setState({ status: "loaded", project }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error: handleError(err) });
      });
    return () => controller.abort();
  }, [projectId, generation, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return [state, reload];
}
