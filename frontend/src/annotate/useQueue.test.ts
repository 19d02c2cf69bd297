import { waitFor } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, type QueueItem } from "../api";
import { mockFetch, type MockRoute } from "../test/mockFetch";
import { EMPTY_ANSWER } from "./answer";
import { loadPending } from "./storage";
import { QueueSession, isRetryable, isSessionLost, retryDelay } from "./useQueue";

const NEXT = "POST /api/projects/3/queue/next/";
const submitPath = (id: number) => `/api/projects/3/assignments/${id}/submit/`;

function item(id: number): QueueItem {
  return {
    assignment_id: id,
    expires_at: new Date(Date.now() + 60_000).toISOString(),
    messages: [{ role: "user", content: "Hi" }],
    left: { content: "a" },
    right: { content: "b" },
    scheme: { allow_tie: true, allow_both_bad: true, strength_scale: false, rationale_mode: "off" },
  };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const ok: MockRoute = { status: 201, body: {} };
const tie = { choice: "tie" as const, strength: null, rationale: "" };

beforeEach(() => sessionStorage.clear());

describe("retry policy", () => {
  it("backs off exponentially from 0.5 s, capped at 10 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 20].map(retryDelay)).toEqual([500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
  });

  it("retries network errors and server errors only", () => {
    expect(isRetryable(new ApiError(0, "network_error", ""))).toBe(true);
    expect(isRetryable(new ApiError(502, "http_502", ""))).toBe(true);
    expect(isRetryable(new ApiError(400, "invalid_judgment", ""))).toBe(false);
    expect(isRetryable(new ApiError(409, "lease_expired", ""))).toBe(false);
  });

  it("tells an ended session from other refusals", () => {
    expect(isSessionLost(new ApiError(401, "not_authenticated", ""))).toBe(true);
    expect(isSessionLost(new ApiError(403, "not_authenticated", ""))).toBe(true);
    expect(isSessionLost(new ApiError(403, "authentication_failed", ""))).toBe(true);
    expect(isSessionLost(new ApiError(403, "permission_denied", "CSRF Failed"))).toBe(false);
    expect(isSessionLost(new ApiError(403, "not_an_annotator", ""))).toBe(false);
    expect(isRetryable(new ApiError(401, "not_authenticated", ""))).toBe(false);
  });
});

describe("QueueSession", () => {
  it("sends queued submits one at a time, in order, retrying 5xx", async () => {
    let next = 0;
    const items = [item(1), item(2), item(3), null];
    const { calls } = mockFetch({
      [NEXT]: () => ({ body: { item: items[Math.min(next++, items.length - 1)] } }),
      [`POST ${submitPath(1)}`]: [{ status: 503, body: { code: "unavailable", message: "Down", extra: {} } }, { status: 500 }, ok],
      [`POST ${submitPath(2)}`]: ok,
    });
    const session = new QueueSession(3, { retryDelay: () => 1 });
    session.start();
    await waitFor(() => expect(session.getSnapshot().current?.item.assignment_id).toBe(1));
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith("/queue/next/"))).toHaveLength(2));

    expect(session.submit(1, EMPTY_ANSWER, tie)).toBe(true);
    expect(session.getSnapshot().current?.item.assignment_id).toBe(2);
    expect(session.submit(1, EMPTY_ANSWER, tie)).toBe(false); // not current any more: no duplicate
    expect(session.submit(2, EMPTY_ANSWER, tie)).toBe(true);
    expect(session.getSnapshot().current).toBeNull();
    expect(session.getSnapshot().pending).toBe(2);

    await waitFor(() => expect(session.getSnapshot().save).toBe("saved"));
    const submits = calls.filter((c) => c.path.includes("/submit/")).map((c) => c.path);
    expect(submits).toEqual([submitPath(1), submitPath(1), submitPath(1), submitPath(2)]);
    expect(session.getSnapshot().completed).toBe(2);

    // Nothing was prefetched after item 2, so `next` is asked again (without exclude) once saved.
    await waitFor(() => expect(session.getSnapshot().current?.item.assignment_id).toBe(3));
    const nextBodies = calls.filter((c) => c.path.endsWith("/queue/next/")).map((c) => c.body);
    expect(nextBodies.slice(0, 3)).toEqual([{}, { exclude: [1] }, {}]);
    session.stop();
  });

  it("shows an item prefetched while the user already moved on", async () => {
    const prefetch = deferred<MockRoute>();
    let n = 0;
    mockFetch({
      [NEXT]: () => {
        n += 1;
        if (n === 1) return { body: { item: item(1) } };
        if (n === 2) return prefetch.promise;
        return { body: { item: null } };
      },
      [`POST ${submitPath(1)}`]: ok,
    });
    const session = new QueueSession(3, { retryDelay: () => 1 });
    session.start();
    await waitFor(() => expect(session.getSnapshot().current?.item.assignment_id).toBe(1));
    await waitFor(() => expect(n).toBe(2));

    session.submit(1, EMPTY_ANSWER, tie);
    expect(session.getSnapshot().phase).toBe("loading");
    prefetch.resolve({ body: { item: item(2) } });
    await waitFor(() => expect(session.getSnapshot().current?.item.assignment_id).toBe(2));
    session.stop();
  });

  it("measures time_taken_ms from when the item was shown", async () => {
    let clock = 1000;
    const { calls } = mockFetch({
      [NEXT]: [{ body: { item: item(1) } }, { body: { item: null } }],
      [`POST ${submitPath(1)}`]: ok,
    });
    const session = new QueueSession(3, { now: () => clock });
    session.start();
    await waitFor(() => expect(session.getSnapshot().current).not.toBeNull());
    clock += 4321;
    session.submit(1, EMPTY_ANSWER, tie);
    await waitFor(() => expect(calls.some((c) => c.path === submitPath(1))).toBe(true));
    expect(calls.find((c) => c.path === submitPath(1))!.body).toEqual({ ...tie, time_taken_ms: 4321 });
    session.stop();
  });

  it("keeps the refused submit and everything queued behind it for the next session", async () => {
    const notAuthenticated: MockRoute = { status: 403, body: { code: "not_authenticated", message: "Log in.", extra: {} } };
    const { calls } = mockFetch({
      [NEXT]: [{ body: { item: item(1) } }, { body: { item: item(2) } }, { body: { item: null } }],
      [`POST ${submitPath(1)}`]: [notAuthenticated, ok],
      [`POST /api/projects/3/assignments/2/skip/`]: { status: 204 },
    });
    const session = new QueueSession(3, { retryDelay: () => 1, userId: 7 });
    const onError = vi.fn((err: unknown) => err as ApiError);
    session.onError = onError;
    session.start();
    await waitFor(() => expect(session.getSnapshot().current?.item.assignment_id).toBe(1));
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith("/queue/next/"))).toHaveLength(2));

    session.submit(1, { choice: "tie", strength: null, rationale: "" }, tie);
    session.skip(2, "  off topic ");
    await waitFor(() => expect(session.getSnapshot().signedOut).toBe(true));
    expect(session.getSnapshot().pending).toBe(0);
    expect(calls.filter((c) => c.path.includes("/assignments/"))).toHaveLength(1); // the skip was not even tried
    expect(onError).not.toHaveBeenCalled(); // the page asks to log in; nothing is reported as lost
    const kept = loadPending(3, 7) as { kind: string; entry: { item: { assignment_id: number } } }[];
    expect(kept.map((op) => [op.kind, op.entry.item.assignment_id])).toEqual([
      ["submit", 1],
      ["skip", 2],
    ]);
    expect(loadPending(3, 8)).toEqual([]); // kept for this user only
    session.stop();

    // After logging in again, a new session sends them, in order, before asking for an item.
    const next = new QueueSession(3, { retryDelay: () => 1, userId: 7 });
    next.start();
    await waitFor(() => expect(next.getSnapshot().phase).toBe("empty"));
    const after = calls.slice(3).map((c) => [c.path, c.body]);
    expect(after).toEqual([
      [submitPath(1), { ...tie, time_taken_ms: expect.any(Number) }],
      ["/api/projects/3/assignments/2/skip/", { reason: "off topic" }],
      ["/api/projects/3/queue/next/", {}],
    ]);
    expect(calls[2]!.body).toEqual(calls[3]!.body);
    expect(next.getSnapshot().completed).toBe(2);
    expect(loadPending(3, 7)).toEqual([]);
    next.stop();
  });
});
