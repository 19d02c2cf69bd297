// What the annotator page keeps in sessionStorage (this tab only, gone when it closes):
//
// - the draft answer per assignment, so a reload shows the choice already made;
// - the submits/skips not yet acknowledged by the server, so that a submit refused because
//   the session ended is sent again after logging in (or after a reload).
//
// Storage can be unavailable (privacy modes, quota): every access is best effort.

import { EMPTY_ANSWER, type Answer } from "./answer";

const DRAFT_PREFIX = "preflab.annotate.draft.";
const PENDING_PREFIX = "preflab.annotate.pending.";

function storage(): Storage | null {
  try {
    return typeof window !== "undefined" ? window.sessionStorage : null;
  } catch {
    return null;
  }
}

function read(key: string): unknown {
  try {
    const raw = storage()?.getItem(key);
    return raw ? (JSON.parse(raw) as unknown) : null;
  } catch {
    return null;
  }
}

function write(key: string, value: unknown): void {
  try {
    const store = storage();
    if (!store) return;
    if (value === null) store.removeItem(key);
    else store.setItem(key, JSON.stringify(value));
  } catch {
    // Quota exceeded or storage disabled: the page still works, it just forgets.
  }
}

const CHOICES = new Set(["left", "right", "tie", "both_bad"]);

function isAnswer(value: unknown): value is Answer {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    (v.choice === null || (typeof v.choice === "string" && CHOICES.has(v.choice))) &&
    (v.strength === null || (typeof v.strength === "number" && [1, 2, 3, 4].includes(v.strength))) &&
    typeof v.rationale === "string"
  );
}

function isEmpty(answer: Answer): boolean {
  return answer.choice === EMPTY_ANSWER.choice && answer.strength === EMPTY_ANSWER.strength && answer.rationale === "";
}

/** The answer being put together for this assignment, if one was kept. */
export function loadDraft(assignmentId: number): Answer | null {
  const value = read(DRAFT_PREFIX + assignmentId);
  return isAnswer(value) ? value : null;
}

/** Keeps the answer for this assignment (an empty answer removes the draft). */
export function saveDraft(assignmentId: number, answer: Answer): void {
  write(DRAFT_PREFIX + assignmentId, isEmpty(answer) ? null : answer);
}

export function clearDraft(assignmentId: number): void {
  write(DRAFT_PREFIX + assignmentId, null);
}

function pendingKey(projectId: number, userId: number | null): string {
  return `${PENDING_PREFIX}${userId ?? "anonymous"}.${projectId}`;
}

/** Submits/skips kept for this user and project (as saved; the caller checks their shape). */
export function loadPending(projectId: number, userId: number | null): unknown[] {
  const value = read(pendingKey(projectId, userId));
  return Array.isArray(value) ? value : [];
}

/** Keeps the list (an empty list removes the entry). */
export function savePending(projectId: number, userId: number | null, ops: unknown[]): void {
  write(pendingKey(projectId, userId), ops.length > 0 ? ops : null);
}
