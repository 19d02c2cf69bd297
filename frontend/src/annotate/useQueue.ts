// The annotator's queue: the current item, one prefetched item, and a small queue of
// pending submits/skips that are sent in the background and retried until they land.
//
// - On start the page asks for `next` without `exclude` (the oldest live lease, so a
//   refresh shows the same item). As soon as an item is current, the next one is
//   prefetched with `exclude: [current]`.
// - Submit/skip are optimistic: the prefetched item is shown at once and the request is
//   queued. Requests are sent one at a time, in order; network errors and 5xx are retried
//   with exponential backoff (submits are idempotent per assignment server-side).
// - While requests are pending no `next` is sent: the server would hand back the lease
//   that is still being submitted. Once the queue drains, the page prefetches again (or,
//   with nothing to show, asks for `next` without `exclude`).
// - A submit/skip refused because the session ended is not lost: it and everything queued
//   behind it are kept in sessionStorage (per user and project), the page asks to log in
//   again, and the next session for the project sends them before asking for an item.
// - The draft answer of each item is kept in sessionStorage until it is submitted, skipped
//   or released (see storage.ts), so a reload shows the choice already made.
// - Undo: for UNDO_WINDOW_MS after a submit lands (and while nothing else is being sent),
//   the latest judgment can be taken back; the server turns it into a revision and hands
//   the lease back, and the item is shown again with the undone answer as its draft.

import { useEffect, useState, useSyncExternalStore } from "react";
import { api, ApiError, request, type QueueItem, type SubmitBody } from "../api";
import { useApiErrorHandler, useAuth } from "../auth";
import type { Answer } from "./answer";
import { clearDraft, loadPending, savePending } from "./storage";

export type SaveStatus = "idle" | "saving" | "retrying" | "saved" | "failed";

export interface CurrentItem {
  item: QueueItem;
  /** Clock reading (ms) when the item was shown; time_taken_ms counts from here. */
  shownAt: number;
  /** Answer to prefill, when a rejected submit brought the item back. */
  draft: Answer | null;
}

export interface Notice {
  id: number;
  tone: "warning" | "error";
  message: string;
}

export interface QueueState {
  /** loading: waiting for an item; ready: `current` is set; empty: nothing left; error: `next` failed. */
  phase: "loading" | "ready" | "empty" | "error";
  current: CurrentItem | null;
  error: ApiError | null;
  save: SaveStatus;
  /** Submits/skips not yet acknowledged by the server. */
  pending: number;
  notices: Notice[];
  /** Counts submits/skips the server accepted (progress reloads when it changes). */
  completed: number;
  /** A submit/skip was refused because the session ended; it is kept until the next login. */
  signedOut: boolean;
  /** The latest judgment the server accepted, undoable until `until` (clock ms). */
  undoable: { assignmentId: number; until: number } | null;
  /** An undo request is in flight. */
  undoing: boolean;
}

/** The server's default undo window (PREFLAB_UNDO_WINDOW_SECONDS); it has the last word. */
export const UNDO_WINDOW_MS = 120_000;

/** POST …/undo/: the lease live again and the undone answer (in display terms). */
export interface UndoResponse {
  item: QueueItem;
  draft: Answer;
  revision_id: number;
}

type Op =
  | { kind: "submit"; entry: CurrentItem; answer: Answer; body: SubmitBody }
  | { kind: "skip"; entry: CurrentItem; reason: string };

export const RETRY_BASE_MS = 500;
export const RETRY_MAX_MS = 10_000;
const MAX_NOTICES = 3;

/** 0.5 s, 1 s, 2 s, 4 s, 8 s, 10 s, 10 s… */
export function retryDelay(attempt: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempt);
}

/** The server no longer knows who we are (the session ended or the token went bad). */
export function isSessionLost(err: ApiError): boolean {
  return err.status === 401 || err.code === "not_authenticated" || err.code === "authentication_failed";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks the shape of an op read back from storage (what savePending wrote). */
function isStoredOp(value: unknown): value is Op {
  if (!isRecord(value) || !isRecord(value.entry) || !isRecord(value.entry.item)) return false;
  if (typeof value.entry.item.assignment_id !== "number" || typeof value.entry.shownAt !== "number") return false;
  if (value.kind === "skip") return typeof value.reason === "string";
  return value.kind === "submit" && isRecord(value.body) && typeof value.body.choice === "string" && isRecord(value.answer);
}

/** Worth retrying: the server was not reached, failed, or asked us to slow down. */
export function isRetryable(err: ApiError): boolean {
  return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
}

function toApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(-1, "unknown_error", String(err));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** "field: message" pairs from a 400's extra.fields, if any. */
function fieldErrors(err: ApiError): string {
  const fields = err.extra.fields;
  if (typeof fields !== "object" || fields === null) return "";
  return Object.entries(fields as Record<string, unknown>)
    .map(([field, message]) => `${field}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    .join("; ");
}

export interface QueueOptions {
  retryDelay?: (attempt: number) => number;
  now?: () => number;
  /** Whose pending submits are kept/sent (stored per user and project). */
  userId?: number | null;
}

export class QueueSession {
  private state: QueueState = {
    phase: "loading",
    current: null,
    error: null,
    save: "idle",
    pending: 0,
    notices: [],
    completed: 0,
    signedOut: false,
    undoable: null,
    undoing: false,
  };
  private readonly listeners = new Set<() => void>();
  private prefetched: QueueItem | null = null;
  private prefetchTriedFor: number | null = null;
  private ops: Op[] = [];
  private draining = false;
  private fetching = false;
  private active = false;
  private noticeSeq = 0;
  private unloadGuarded = false;
  private restored = false;
  private readonly userId: number | null;
  private readonly delay: (attempt: number) => number;
  private readonly now: () => number;

  /** Maps any failure to an ApiError (and lets the app react to a lost session). */
  onError: (err: unknown) => ApiError = toApiError;

  constructor(
    readonly projectId: number,
    options: QueueOptions = {},
  ) {
    this.delay = options.retryDelay ?? retryDelay;
    this.now = options.now ?? Date.now;
    this.userId = options.userId ?? null;
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getSnapshot = (): QueueState => this.state;

  /** Starts (or resumes) fetching items. Pending submits are sent regardless. */
  start(): void {
    this.active = true;
    this.restorePending();
    this.pump();
  }

  /** Stops fetching items; pending submits keep being sent until they land. */
  stop(): void {
    this.active = false;
  }

  /** Queues the judgment for the current item and shows the next one. */
  submit(assignmentId: number, answer: Answer, body: Omit<SubmitBody, "time_taken_ms">): boolean {
    const entry = this.state.current;
    if (!entry || entry.item.assignment_id !== assignmentId) return false;
    const timeTaken = Math.max(0, Math.round(this.now() - entry.shownAt));
    clearDraft(assignmentId);
    this.advance();
    this.enqueue({ kind: "submit", entry, answer, body: { ...body, time_taken_ms: timeTaken } });
    return true;
  }

  /** Queues a skip of the current item and shows the next one. */
  skip(assignmentId: number, reason: string): boolean {
    const entry = this.state.current;
    if (!entry || entry.item.assignment_id !== assignmentId) return false;
    clearDraft(assignmentId);
    this.advance();
    this.enqueue({ kind: "skip", entry, reason: reason.trim() });
    return true;
  }

  /** Asks for an item again after an error or an empty queue. */
  retry(): void {
    if (this.state.phase !== "error" && this.state.phase !== "empty") return;
    this.set({ phase: "loading", error: null });
    this.pump();
  }

  /** Takes back the latest judgment and shows its item again (the current one waits). */
  async undo(): Promise<boolean> {
    const target = this.state.undoable;
    if (!target || this.state.undoing || this.ops.length > 0 || this.now() >= target.until) return false;
    this.set({ undoing: true });
    let result: UndoResponse;
    try {
      result = await request<UndoResponse>(
        `/api/projects/${this.projectId}/assignments/${target.assignmentId}/undo/`,
        { method: "POST" },
      );
    } catch (err) {
      const apiErr = this.onError(err);
      // refused for good (window passed, comparison complete, …): the button goes away
      this.set({ undoing: false, undoable: isRetryable(apiErr) ? target : null });
      this.notify("error", `Could not undo: ${apiErr.message}`);
      return false;
    }
    const current = this.state.current;
    // The server keeps two leases: the undone one and the item shown until now (a prefetch
    // beyond that was released there).
    if (this.prefetched) clearDraft(this.prefetched.assignment_id);
    this.prefetched = current ? current.item : null;
    this.set({
      current: this.show(result.item, result.draft),
      phase: "ready",
      error: null,
      undoable: null,
      undoing: false,
      completed: this.state.completed + 1,
    });
    this.pump();
    return true;
  }

  dismissNotice(id: number): void {
    this.set({ notices: this.state.notices.filter((n) => n.id !== id) });
  }

  // -- internals ---------------------------------------------------------------------

  private set(patch: Partial<QueueState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  private show(item: QueueItem, draft: Answer | null = null): CurrentItem {
    return { item, shownAt: this.now(), draft };
  }

  private notify(tone: Notice["tone"], message: string): void {
    this.noticeSeq += 1;
    const notices = [...this.state.notices, { id: this.noticeSeq, tone, message }].slice(-MAX_NOTICES);
    this.set({ notices });
  }

  /** Replaces the current item with the prefetched one (or nothing, while loading). */
  private advance(): void {
    const next = this.prefetched;
    this.prefetched = null;
    this.set({ current: next ? this.show(next) : null, phase: next ? "ready" : "loading", error: null });
  }

  private isPending(assignmentId: number): boolean {
    return this.ops.some((op) => op.entry.item.assignment_id === assignmentId);
  }

  /** Decides whether to ask the server for an item now. */
  private pump(): void {
    if (!this.active || this.fetching || this.state.signedOut) return;
    const current = this.state.current;
    if (!current) {
      if (this.ops.length > 0 || this.state.phase !== "loading") return;
      void this.fetchNext(null);
    } else if (!this.prefetched && this.ops.length === 0 && this.prefetchTriedFor !== current.item.assignment_id) {
      this.prefetchTriedFor = current.item.assignment_id;
      void this.fetchNext(current.item.assignment_id);
    }
  }

  private async fetchNext(excludeId: number | null): Promise<void> {
    this.fetching = true;
    let item: QueueItem | null = null;
    let error: ApiError | null = null;
    try {
      item = await api.queueNext(this.projectId, excludeId === null ? undefined : [excludeId]);
    } catch (err) {
      error = this.onError(err);
    }
    this.fetching = false;

    const current = this.state.current;
    if (error) {
      // A failed prefetch is not shown: the page asks again once the current item is done.
      if (!current && excludeId === null) this.set({ phase: "error", error });
    } else if (item && !this.isPending(item.assignment_id)) {
      if (!current) this.set({ current: this.show(item), phase: "ready", error: null });
      else if (item.assignment_id !== current.item.assignment_id && !this.prefetched) this.prefetched = item;
    } else if (!item && !current && excludeId === null) {
      this.set({ phase: "empty" });
    }
    this.pump();
  }

  private enqueue(op: Op): void {
    this.ops.push(op);
    this.set({ pending: this.ops.length, save: "saving" });
    this.guardUnload();
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.ops.length > 0) {
        const op = this.ops[0]!;
        const error = await this.send(op);
        if (error && isSessionLost(error)) {
          this.keepForNextLogin();
          return;
        }
        this.ops.shift();
        if (error) this.fail(op, error);
        else this.set({ completed: this.state.completed + 1, undoable: this.undoableAfter(op) });
        this.set({ pending: this.ops.length, save: this.ops.length > 0 ? "saving" : error ? "failed" : "saved" });
      }
    } finally {
      this.draining = false;
      this.guardUnload();
    }
    this.pump();
  }

  /** Sends one op, retrying transient failures; resolves to null or the final error. */
  private async send(op: Op): Promise<ApiError | null> {
    const assignmentId = op.entry.item.assignment_id;
    for (let attempt = 0; ; attempt += 1) {
      try {
        if (op.kind === "submit") await api.submit(this.projectId, assignmentId, op.body);
        else await api.skip(this.projectId, assignmentId, op.reason);
        return null;
      } catch (err) {
        const apiErr = toApiError(err);
        if (!isRetryable(apiErr)) return apiErr;
        this.set({ save: "retrying" });
        await sleep(this.delay(attempt));
        this.set({ save: "saving" });
      }
    }
  }

  private undoableAfter(op: Op): QueueState["undoable"] {
    if (op.kind !== "submit") return this.state.undoable;
    return { assignmentId: op.entry.item.assignment_id, until: this.now() + UNDO_WINDOW_MS };
  }

  private fail(op: Op, err: ApiError): void {
    this.onError(err);
    if (op.kind === "submit" && err.status === 400) {
      // The answer was rejected as invalid: bring the item back so it can be fixed.
      const details = fieldErrors(err);
      this.notify("error", `Your answer was not saved: ${err.message}${details ? ` (${details})` : ""}`);
      this.restore(op.entry, op.answer);
    } else if (err.code === "lease_expired") {
      this.notify("warning", err.message);
    } else {
      const what = op.kind === "submit" ? "Your answer" : "The skip";
      this.notify("error", `${what} could not be saved: ${err.message}`);
    }
  }

  /** Keeps every queued op for the next session (after logging in again) and stops sending. */
  private keepForNextLogin(): void {
    savePending(this.projectId, this.userId, [...loadPending(this.projectId, this.userId), ...this.ops]);
    this.ops = [];
    this.set({ signedOut: true, pending: 0, save: "idle" });
  }

  /** On the first start, queues what an earlier session kept because the session ended. */
  private restorePending(): void {
    if (this.restored) return;
    this.restored = true;
    const kept = loadPending(this.projectId, this.userId).filter(isStoredOp);
    savePending(this.projectId, this.userId, []);
    const fresh = kept.filter((op) => !this.isPending(op.entry.item.assignment_id));
    if (fresh.length === 0) return;
    this.ops.push(...fresh);
    this.set({ pending: this.ops.length, save: "saving" });
    this.guardUnload();
    void this.drain();
  }

  private restore(entry: CurrentItem, answer: Answer): void {
    const current = this.state.current;
    if (current) {
      if (this.prefetched) {
        // Three items at once cannot happen with two leases; hand the extra one back.
        const extra = this.prefetched.assignment_id;
        clearDraft(extra);
        void api.release(this.projectId, extra).catch(() => undefined);
      }
      this.prefetched = current.item;
    }
    this.set({ current: { ...entry, draft: answer }, phase: "ready", error: null });
  }

  private readonly onBeforeUnload = (event: BeforeUnloadEvent) => {
    event.preventDefault();
    event.returnValue = "";
  };

  /** Warns before closing the tab while answers are still being sent. */
  private guardUnload(): void {
    if (typeof window === "undefined") return;
    const want = this.ops.length > 0;
    if (want && !this.unloadGuarded) window.addEventListener("beforeunload", this.onBeforeUnload);
    if (!want && this.unloadGuarded) window.removeEventListener("beforeunload", this.onBeforeUnload);
    this.unloadGuarded = want;
  }
}

/** One QueueSession per mounted page (key the page by project to get a fresh one). */
export function useQueue(projectId: number, options?: QueueOptions): { state: QueueState; session: QueueSession } {
  const handleError = useApiErrorHandler();
  const { state: auth } = useAuth();
  const userId = auth.status === "authenticated" ? auth.user.id : null;
  const [session] = useState(() => new QueueSession(projectId, { userId, ...options }));

  useEffect(() => {
    session.onError = handleError;
  }, [session, handleError]);

  useEffect(() => {
    session.start();
    return () => session.stop();
  }, [session]);

  const state = useSyncExternalStore(session.subscribe, session.getSnapshot);
  return { state, session };
}
