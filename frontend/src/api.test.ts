import { describe, expect, it } from "vitest";
import { api, ApiError, getCookie, request, toApiPath } from "./api";
import { mockFetch } from "./test/mockFetch";

describe("api client", () => {
  it("sends the csrftoken cookie as X-CSRFToken on POST, with JSON and same-origin credentials", async () => {
    document.cookie = "other=1";
    document.cookie = "csrftoken=tok123";
    const { calls } = mockFetch({
      "POST /api/auth/login/": { body: { id: 1, username: "ann", is_superuser: false, roles: ["annotator"] } },
    });

    const user = await api.login("ann", "secret");

    expect(user.username).toBe("ann");
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.method).toBe("POST");
    expect(call.headers["x-csrftoken"]).toBe("tok123");
    expect(call.headers["content-type"]).toBe("application/json");
    expect(call.init?.credentials).toBe("same-origin");
    expect(call.body).toEqual({ username: "ann", password: "secret" });
  });

  it("does not send X-CSRFToken on GET", async () => {
    document.cookie = "csrftoken=tok123";
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: { id: 1, username: "ann", is_superuser: false, roles: [] } },
    });

    await api.me();

    expect(calls[0]!.headers["x-csrftoken"]).toBeUndefined();
    expect(calls[0]!.init?.credentials).toBe("same-origin");
  });

  it("fetches the CSRF endpoint and reads the cookie", async () => {
    mockFetch({ "GET /api/auth/csrf/": { body: { csrfToken: "abc" } } });
    await expect(api.csrf()).resolves.toBe("abc");
    document.cookie = "csrftoken=a%20b";
    expect(getCookie("csrftoken")).toBe("a b");
    expect(getCookie("missing")).toBeNull();
  });

  it("parses the JSON error body into an ApiError", async () => {
    mockFetch({
      "POST /api/auth/login/": {
        status: 400,
        body: { code: "invalid_credentials", message: "Wrong username or password.", extra: { field: "password" } },
      },
    });

    const err = await api.login("ann", "bad").catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ApiError);
    const apiErr = err as ApiError;
    expect(apiErr.status).toBe(400);
    expect(apiErr.code).toBe("invalid_credentials");
    expect(apiErr.message).toBe("Wrong username or password.");
    expect(apiErr.extra).toEqual({ field: "password" });
  });

  it("defaults extra to {} and falls back for non-JSON error bodies", async () => {
    mockFetch({ "GET /api/auth/me/": { status: 403, body: { code: "not_authenticated", message: "Log in first." } } });
    const err = (await api.me().catch((e: unknown) => e)) as ApiError;
    expect(err.code).toBe("not_authenticated");
    expect(err.extra).toEqual({});

    const { fn } = mockFetch({});
    fn.mockResolvedValueOnce(new Response("<h1>Bad gateway</h1>", { status: 502, statusText: "Bad Gateway" }));
    const err2 = (await request("/api/anything/").catch((e: unknown) => e)) as ApiError;
    expect(err2).toBeInstanceOf(ApiError);
    expect(err2.status).toBe(502);
    expect(err2.code).toBe("http_502");
  });

  it("throws ApiError(status 0, network_error) when fetch fails", async () => {
    mockFetch({ "GET /api/projects/": { throws: new TypeError("Failed to fetch") } });

    const err = (await api.projects().catch((e: unknown) => e)) as ApiError;

    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
    expect(err.code).toBe("network_error");
  });

  it("returns undefined for 204 responses", async () => {
    mockFetch({ "POST /api/auth/logout/": { status: 204 } });
    await expect(api.logout()).resolves.toBeUndefined();
  });

  it("follows pagination links", async () => {
    const p = (id: number) => ({ id, name: `P${id}`, description: "", role: "annotator", created_at: "2025-01-01T00:00:00Z" });
    mockFetch({
      "GET /api/projects/": { body: { count: 3, next: "http://testserver/api/projects/?page=2", previous: null, results: [p(1), p(2)] } },
      "GET /api/projects/?page=2": { body: { count: 3, next: null, previous: "http://testserver/api/projects/", results: [p(3)] } },
    });
    const all = await api.allProjects();
    expect(all.map((x) => x.id)).toEqual([1, 2, 3]);
    expect(toApiPath("https://example.org/api/projects/?page=9")).toBe("/api/projects/?page=9");
  });

  it("calls the quality and exclusion endpoints", async () => {
    document.cookie = "csrftoken=tok";
    const ex = { id: 4, annotator_id: 9, username: "bob", reason: "spam", active: true };
    const { calls } = mockFetch({
      "GET /api/projects/3/quality/": { body: { computed_at: null, stale: false, new_judgments: 0, data: null } },
      "POST /api/projects/3/quality/recompute/": { status: 202, body: { task_id: "t1" } },
      "GET /api/projects/3/exclusions/": { body: { results: [ex] } },
      "POST /api/projects/3/exclusions/": { status: 201, body: ex },
      "POST /api/projects/3/exclusions/4/revoke/": { body: { ...ex, active: false } },
    });

    expect((await api.quality(3)).data).toBeNull();
    await expect(api.recomputeQuality(3)).resolves.toEqual({ task_id: "t1" });
    expect((await api.exclusions(3)).map((e) => e.id)).toEqual([4]);
    expect((await api.excludeAnnotator(3, 9, "spam")).id).toBe(4);
    expect((await api.revokeExclusion(3, 4, "ok")).active).toBe(false);

    const posts = calls.filter((c) => c.method === "POST");
    expect(posts.map((c) => c.body)).toEqual([undefined, { annotator_id: 9, reason: "spam" }, { reason: "ok" }]);
    expect(posts.every((c) => c.headers["x-csrftoken"] === "tok")).toBe(true);
  });

  it("calls the API token and logout-all endpoints", async () => {
    document.cookie = "csrftoken=tok";
    const token = {
      id: 5,
      name: "ci",
      prefix: "pfl_abcd",
      created_at: "2025-03-01T00:00:00Z",
      expires_at: null,
      last_used_at: null,
    };
    const { calls } = mockFetch({
      "GET /api/auth/tokens/": { body: { results: [token] } },
      "POST /api/auth/tokens/": { status: 201, body: { ...token, id: 6, token: "pfl_abcdSECRET" } },
      "DELETE /api/auth/tokens/5/": { status: 204 },
      "POST /api/auth/logout-all/": { status: 204 },
    });

    expect((await api.tokens()).map((t) => t.prefix)).toEqual(["pfl_abcd"]);
    const created = await api.createToken("ci");
    expect(created.id).toBe(6);
    expect(created.token).toBe("pfl_abcdSECRET");
    await expect(api.revokeToken(5)).resolves.toBeUndefined();
    await expect(api.logoutAll()).resolves.toBeUndefined();

    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /api/auth/tokens/",
      "POST /api/auth/tokens/",
      "DELETE /api/auth/tokens/5/",
      "POST /api/auth/logout-all/",
    ]);
    expect(calls[0]!.headers["x-csrftoken"]).toBeUndefined();
    const writes = calls.slice(1);
    expect(writes.map((c) => c.body)).toEqual([{ name: "ci" }, undefined, undefined]);
    expect(writes.every((c) => c.headers["x-csrftoken"] === "tok")).toBe(true);
    expect(writes.every((c) => c.init?.credentials === "same-origin")).toBe(true);
  });

  it("turns an API token error into an ApiError with the server's message", async () => {
    mockFetch({
      "POST /api/auth/tokens/": { status: 400, body: { code: "invalid", message: "Name is required.", extra: {} } },
    });
    const err = (await api.createToken("").catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.message).toBe("Name is required.");
  });
});
