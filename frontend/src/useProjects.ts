import { useCallback, useEffect, useState } from "react";
import { api, type ApiError, type Project } from "./api";
import { useApiErrorHandler } from "./auth";

export type ProjectsState =
  | { status: "loading" }
  | { status: "loaded"; projects: Project[] }
  | { status: "error"; error: ApiError };

/** Loads every project visible to the user; returns the state and a reload function. */
export function useProjects(): [ProjectsState, () => void] {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<ProjectsState>({ status: "loading" });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    setState({ status: "loading" });
    api
      .allProjects(controller.signal)
      .then((projects) => setState({ status: "loaded", projects }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error: handleError(err) });
      });
    return () => controller.abort();
  }, [generation, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return [state, reload];
}
