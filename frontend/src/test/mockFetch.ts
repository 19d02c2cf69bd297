import { vi } from "vitest";

export interface MockRoute {
  status?: number;
  body?: unknown;
  /** Throw this instead of answering (simulates a network failure). */
  throws?: unknown;
}

export interface RecordedCall {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  init: RequestInit | undefined;
}

export function jsonResponse(status: number, body?: unknown): Response {
  if (status === 204 || body === undefined) return new Response(null, { status });
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** Computes the answer from the call; may return a promise (e.g. to hold a response back). */
export type MockHandler = (call: RecordedCall) => MockRoute | Promise<MockRoute>;

/**
 * Replaces global fetch with a router keyed by "METHOD /path" (path includes the query).
 * A route may be a single answer, a list answered in order (the last one repeats) or a
 * function of the recorded call.
 */
export function mockFetch(routes: Record<string, MockRoute | MockRoute[] | MockHandler>) {
  const calls: RecordedCall[] = [];
  const counters = new Map<string, number>();
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, "http://localhost");
    const method = (init?.method ?? "GET").toUpperCase();
    const path = url.pathname + url.search;
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value;
    });
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const call: RecordedCall = { method, path, headers, body, init };
    calls.push(call);

    const key = `${method} ${path}`;
    const route = routes[key];
    if (!route) return jsonResponse(404, { code: "not_found", message: `No mock for ${key}`, extra: {} });
    let answer: MockRoute;
    if (typeof route === "function") {
      answer = await route(call);
    } else if (Array.isArray(route)) {
      const n = counters.get(key) ?? 0;
      counters.set(key, n + 1);
      answer = route[Math.min(n, route.length - 1)]!;
    } else {
      answer = route;
    }
    if (answer.throws !== undefined) throw answer.throws;
    return jsonResponse(answer.status ?? 200, answer.body);
  });
  vi.stubGlobal("fetch", fn);
  return { fn, calls };
}
