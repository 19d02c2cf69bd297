import { useCallback, useEffect, useState } from "react";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { isActiveStatus } from "./common";
import { consoleApi } from "./consoleApi";
import { appendRows, lastStep } from "./metrics";
import type { MetricRow, TrainingRun } from "./types";
import { POLL_INTERVAL_MS, sleep } from "./useLoad";

export interface RunMetricsState {
  run: TrainingRun | null;
  rows: MetricRow[];
  /** The first load failed (nothing to show). */
  error: ApiError | null;
}

export interface RunMetricsHook extends RunMetricsState {
  /** Shows a run the server just returned (e.g. after cancel) and polls again if it is active. */
  apply(run: TrainingRun): void;
  reload(): void;
}

/**
 * A run and its metric rows: GET the run and GET …/metrics/ (then `?after=LAST_STEP`),
 * again every 2 s while the run is queued or running, appending the new rows. Once the
 * run has finished, one last metrics request picks up its final rows. Key by run id.
 */
export function useRunMetrics(projectId: number, runId: number, intervalMs: number = POLL_INTERVAL_MS): RunMetricsHook {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<RunMetricsState>({ run: null, rows: [], error: null });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let rows: MetricRow[] | null = null;

    async function run() {
      setState((s) => ({ ...s, error: null }));
      for (;;) {
        try {
          const current = await consoleApi.run(projectId, runId, signal);
          if (signal.aborted) return;
          setState((s) => ({ ...s, run: current }));
          const held: MetricRow[] = rows ?? [];
          const after = rows === null ? null : lastStep(held);
          const more = await consoleApi.metrics(projectId, runId, after, signal);
          if (signal.aborted) return;
          rows = appendRows(held, more);
          const next = rows;
          setState((s) => ({ ...s, rows: next }));
          if (!isActiveStatus(current.status)) return;
        } catch (err) {
          if (signal.aborted) return;
          const error = handleError(err);
          if (rows === null || error.code === "not_authenticated") {
            setState((s) => ({ ...s, error }));
            return;
          }
          // A failed poll is retried on the next tick.
        }
        await sleep(intervalMs, signal);
        if (signal.aborted) return;
      }
    }

    void run();
    return () => controller.abort();
    // `generation` restarts the loop (after cancel or a retry of a failed load).
  }, [projectId, runId, intervalMs, generation, handleError]);

  const apply = useCallback((fresh: TrainingRun) => {
    setState((s) => ({ ...s, run: fresh }));
    if (isActiveStatus(fresh.status)) setGeneration((g) => g + 1);
  }, []);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { ...state, apply, reload };
}
