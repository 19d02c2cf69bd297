// Data hooks of the quality dashboard: the cached statistics (with "recompute now" and
// polling until the new numbers land) and the exclusion audit trail.

import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, type Exclusion, type QualityReport } from "../api";
import { useApiErrorHandler } from "../auth";

export const POLL_INTERVAL_MS = 2000;
export const POLL_TIMEOUT_MS = 60_000;

export type QualityState =
  | { status: "loading" }
  | { status: "loaded"; report: QualityReport }
  | { status: "error"; error: ApiError };

/**
 * idle: nothing running; starting: the POST is in flight; polling: waiting for a new
 * computed_at; timeout: gave up waiting (the task may still finish); error: the POST failed.
 */
export type RecomputeState =
  | { phase: "idle" | "starting" | "polling" | "timeout" }
  | { phase: "error"; error: ApiError };

export interface QualityOptions {
  pollIntervalMs?: number;
  pollTimeoutMs?: number;
}

export interface QualityHook {
  state: QualityState;
  recompute: RecomputeState;
  reload(): void;
  startRecompute(): void;
}

/** A 403 that is not a lost session: the caller is signed in but not a project admin. */
export function isForbidden(error: ApiError): boolean {
  return error.status === 403 && error.code !== "not_authenticated";
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** GET /api/projects/{id}/quality/, plus POST …/recompute/ followed by polling every 2 s (up to 60 s). */
export function useQuality(projectId: number, options: QualityOptions = {}): QualityHook {
  const pollIntervalMs = options.pollIntervalMs ?? POLL_INTERVAL_MS;
  const pollTimeoutMs = options.pollTimeoutMs ?? POLL_TIMEOUT_MS;
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<QualityState>({ status: "loading" });
  const [recompute, setRecompute] = useState<RecomputeState>({ phase: "idle" });
  const [generation, setGeneration] = useState(0);
  const computedAt = useRef<string | null>(null);
  const poll = useRef<AbortController | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setState((s) => (s.status === "loaded" ? s : { status: "loading" }));
    api
      .quality(projectId, controller.signal)
      .then((report) => {
        computedAt.current = report.computed_at;
        setState({ status: "loaded", report });
      })
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error: handleError(err) });
      });
    return () => controller.abort();
  }, [projectId, generation, handleError]);

  // Stop polling when the page goes away.
  useEffect(() => () => poll.current?.abort(), []);

  const startRecompute = useCallback(() => {
    poll.current?.abort();
    const controller = new AbortController();
    poll.current = controller;
    const { signal } = controller;
    const before = computedAt.current;

    async function run() {
      setRecompute({ phase: "starting" });
      try {
        await api.recomputeQuality(projectId);
      } catch (err) {
        if (!signal.aborted) setRecompute({ phase: "error", error: handleError(err) });
        return;
      }
      if (signal.aborted) return;
      setRecompute({ phase: "polling" });
      const attempts = Math.max(1, Math.ceil(pollTimeoutMs / pollIntervalMs));
      for (let attempt = 0; attempt < attempts; attempt += 1) {
        await sleep(pollIntervalMs, signal);
        if (signal.aborted) return;
        let report: QualityReport;
        try {
          report = await api.quality(projectId, signal);
        } catch (err) {
          if (signal.aborted) return;
          const error = handleError(err);
          if (error.code === "not_authenticated") return;
          continue; // a failed poll is retried on the next tick
        }
        if (signal.aborted) return;
        computedAt.current = report.computed_at;
        setState({ status: "loaded", report });
        if (report.computed_at !== null && report.computed_at !== before) {
          setRecompute({ phase: "idle" });
          return;
        }
      }
      setRecompute({ phase: "timeout" });
    }

    void run();
  }, [projectId, pollIntervalMs, pollTimeoutMs, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { state, recompute, reload, startRecompute };
}

export type ExclusionsState =
  | { status: "loading" }
  | { status: "loaded"; exclusions: Exclusion[] }
  | { status: "error"; error: ApiError };

export interface ExclusionsHook {
  state: ExclusionsState;
  /** Refetches the list (the old one stays on screen meanwhile). */
  reload(): void;
  /** Puts an exclusion the server just returned into the list at once (replacing one with its id). */
  apply(exclusion: Exclusion): void;
}

/** GET /api/projects/{id}/exclusions/ (newest first). */
export function useExclusions(projectId: number): ExclusionsHook {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<ExclusionsState>({ status: "loading" });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    api
      .exclusions(projectId, controller.signal)
      .then((exclusions) => setState({ status: "loaded", exclusions }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error: handleError(err) });
      });
    return () => controller.abort();
  }, [projectId, generation, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const apply = useCallback((exclusion: Exclusion) => {
    setState((s) => {
      if (s.status !== "loaded") return s;
      const list = s.exclusions;
      const known = list.some((e) => e.id === exclusion.id);
      return {
        status: "loaded",
        exclusions: known ? list.map((e) => (e.id === exclusion.id ? exclusion : e)) : [exclusion, ...list],
      };
    });
  }, []);
  return { state, reload, apply };
}

/** The active exclusion per annotator id. */
export function activeExclusions(exclusions: Exclusion[]): Map<number, Exclusion> {
  const active = new Map<number, Exclusion>();
  for (const exclusion of exclusions) {
    if (exclusion.active && !active.has(exclusion.annotator_id)) active.set(exclusion.annotator_id, exclusion);
  }
  return active;
}

/** The current time, refreshed every `intervalMs` (for "5 minutes ago" labels). */
export function useNow(intervalMs = 30_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}
