// Data hooks of the ML console: a one-shot load and a load that polls while the data says
// so (a queued/running round, run or export). Polling stops when the data is finished, when
// the component unmounts, or when the session is gone.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";

export const POLL_INTERVAL_MS = 2000;

export type Loadable<T> = { status: "loading" } | { status: "loaded"; data: T } | { status: "error"; error: ApiError };

export interface LoadHook<T> {
  state: Loadable<T>;
  /** Fetches again (what is on screen stays meanwhile). */
  reload(): void;
  /** Changes the loaded data in place (e.g. with what a POST returned). */
  update(change: (data: T) => T): void;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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

/** A 403 that is not a lost session: signed in, but without the role. */
export function isForbidden(error: ApiError): boolean {
  return error.status === 403 && error.code !== "not_authenticated";
}

/** Runs `load` (keep it stable with useCallback) on mount and whenever it changes. */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>): LoadHook<T> {
  return usePolled(load, null);
}

/**
 * Runs `load`, then again every `intervalMs` while `keepPolling(data)` holds. A failed
 * poll after a successful load is retried on the next tick (the last data stays); a
 * failed first load (or reload) is an error state. Key the component by what `load`
 * fetches so that another id starts from "loading".
 */
export function usePolled<T>(
  load: (signal: AbortSignal) => Promise<T>,
  keepPolling: ((data: T) => boolean) | null,
  intervalMs: number = POLL_INTERVAL_MS,
): LoadHook<T> {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<Loadable<T>>({ status: "loading" });
  const [generation, setGeneration] = useState(0);
  const keep = useRef(keepPolling);
  keep.current = keepPolling;

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;

    async function run() {
      let loaded = false;
      for (;;) {
        try {
          const data = await load(signal);
          if (signal.aborted) return;
          loaded = true;
          setState({ status: "loaded", data });
          if (!keep.current?.(data)) return;
        } catch (err) {
          if (signal.aborted) return;
          const error = handleError(err);
          if (!loaded || !keep.current || error.code === "not_authenticated") {
            setState({ status: "error", error });
            return;
          }
        }
        await sleep(intervalMs, signal);
        if (signal.aborted) return;
      }
    }

    void run();
    return () => controller.abort();
  }, [load, intervalMs, generation, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const update = useCallback((change: (data: T) => T) => {
    setState((s) => (s.status === "loaded" ? { status: "loaded", data: change(s.data) } : s));
  }, []);
  return { state, reload, update };
}
