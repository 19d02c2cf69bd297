import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";

const notAuthenticated = { status: 403, body: { code: "not_authenticated", message: "Not logged in.", extra: {} } };
const user = { id: 7, username: "alice", is_superuser: false, roles: ["annotator"] };

describe("LoginPage", () => {
  it("redirects unauthenticated users to /login", async () => {
    mockFetch({ "GET /api/auth/me/": notAuthenticated });
    renderApp("/projects");
    expect(await screen.findByRole("button", { name: "Log in" })).toBeTruthy();
    expect(screen.getByLabelText("Username")).toBeTruthy();
    expect(screen.getByLabelText("Password")).toBeTruthy();
  });

  it("shows the server's error message on bad credentials", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": notAuthenticated,
      "GET /api/auth/csrf/": { body: { csrfToken: "tok" } },
      "POST /api/auth/login/": {
        status: 400,
        body: { code: "invalid_credentials", message: "Invalid username or password.", extra: {} },
      },
    });
    const u = userEvent.setup();
    renderApp("/login");

    await u.type(await screen.findByLabelText("Username"), "alice");
    await u.type(screen.getByLabelText("Password"), "wrong");
    await u.click(screen.getByRole("button", { name: "Log in" }));

    expect((await screen.findByRole("alert")).textContent).toBe("Invalid username or password.");
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "GET /api/auth/me/",
      "GET /api/auth/csrf/",
      "POST /api/auth/login/",
    ]);
    expect(screen.queryByRole("heading", { name: "Your projects" })).toBeNull();
  });

  it("logs in, sends the CSRF token and navigates to the projects page", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": notAuthenticated,
      "GET /api/auth/csrf/": { body: { csrfToken: "tok" } },
      "POST /api/auth/login/": { body: user },
      "GET /api/projects/": { body: { count: 0, next: null, previous: null, results: [] } },
    });
    // The real endpoint sets the cookie; emulate that.
    document.cookie = "csrftoken=cookie-token";
    const u = userEvent.setup();
    renderApp("/login");

    await u.type(await screen.findByLabelText("Username"), "alice");
    await u.type(screen.getByLabelText("Password"), "s3cret");
    await u.click(screen.getByRole("button", { name: "Log in" }));

    expect(await screen.findByRole("heading", { name: "Your projects" })).toBeTruthy();
    expect(screen.getByText("alice")).toBeTruthy();
    const login = calls.find((c) => c.path === "/api/auth/login/")!;
    expect(login.body).toEqual({ username: "alice", password: "s3cret" });
    expect(login.headers["x-csrftoken"]).toBe("cookie-token");
  });

  it("logs out from the top bar and returns to /login", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/": { body: { count: 0, next: null, previous: null, results: [] } },
      "POST /api/auth/logout/": { status: 204 },
    });
    const u = userEvent.setup();
    renderApp("/projects");

    await u.click(await screen.findByRole("button", { name: "Log out" }));

    expect(await screen.findByRole("button", { name: "Log in" })).toBeTruthy();
    expect(calls.some((c) => c.method === "POST" && c.path === "/api/auth/logout/")).toBe(true);
  });
});
