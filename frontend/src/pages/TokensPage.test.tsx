import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { ApiToken, CreatedApiToken } from "../api";
import { mockFetch, type MockHandler, type MockRoute } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";

const user = { id: 1, username: "bob", is_superuser: false, roles: ["ml_engineer"] };

const tokens: ApiToken[] = [
  {
    id: 7,
    name: "training pipeline",
    prefix: "pfl_ab12",
    created_at: "2025-03-02T10:00:00Z",
    expires_at: "2099-01-01T00:00:00Z",
    last_used_at: "2025-03-03T08:30:00Z",
  },
  {
    id: 4,
    name: "laptop",
    prefix: "pfl_zz99",
    created_at: "2025-02-01T10:00:00Z",
    expires_at: null,
    last_used_at: null,
  },
];

const LIST = "GET /api/auth/tokens/";
const CREATE = "POST /api/auth/tokens/";

type Routes = Record<string, MockRoute | MockRoute[] | MockHandler>;

function routes(extra: Routes = {}): Routes {
  return { "GET /api/auth/me/": { body: user }, [LIST]: { body: { results: tokens } }, ...extra };
}

/** The body rows of the tokens table (the inline confirm rows included). */
function bodyRows() {
  return within(screen.getByRole("table", { name: "API tokens" })).getAllByRole("row").slice(1);
}

describe("TokensPage", () => {
  it("lists the user's tokens with prefix, dates and a revoke button", async () => {
    const { calls } = mockFetch(routes());
    renderApp("/account/tokens");

    expect(await screen.findByRole("heading", { name: "API tokens" })).toBeTruthy();
    expect(await screen.findByText("training pipeline")).toBeTruthy();
    const rows = bodyRows();
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByText("pfl_ab12…")).toBeTruthy();
    expect(within(rows[0]!).getAllByText((_, el) => el?.tagName === "TIME")).toHaveLength(3);
    expect(within(rows[0]!).getByRole("button", { name: "Revoke training pipeline" })).toBeTruthy();
    expect(within(rows[1]!).getByText("laptop")).toBeTruthy();
    expect(within(rows[1]!).getByText("pfl_zz99…")).toBeTruthy();
    // No expiry, never used.
    expect(within(rows[1]!).getAllByText("Never")).toHaveLength(2);
    expect(screen.queryByText("You have no API tokens yet.")).toBeNull();
    expect(calls.map((c) => `${c.method} ${c.path}`)).toContain(LIST);
  });

  it("is linked from the top bar", async () => {
    mockFetch(routes({ "GET /api/projects/": { body: { count: 0, next: null, previous: null, results: [] } } }));
    const u = userEvent.setup();
    renderApp("/projects");

    const link = await screen.findByRole("link", { name: "API tokens" });
    expect(link.getAttribute("href")).toBe("/account/tokens");
    await u.click(link);
    expect(await screen.findByRole("heading", { name: "API tokens" })).toBeTruthy();
    expect(await screen.findByText("laptop")).toBeTruthy();
  });

  it("shows the empty state when there are no tokens", async () => {
    mockFetch(routes({ [LIST]: { body: { results: [] } } }));
    renderApp("/account/tokens");

    expect(await screen.findByText("You have no API tokens yet.")).toBeTruthy();
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("creates a token and shows its secret once, with a copy button", async () => {
    const created: CreatedApiToken = {
      id: 9,
      name: "eval job",
      prefix: "pfl_new1",
      created_at: "2025-03-04T12:00:00Z",
      expires_at: null,
      last_used_at: null,
      token: "pfl_new1SECRETsecretSECRETsecret",
    };
    document.cookie = "csrftoken=tok";
    const { calls } = mockFetch(routes({ [CREATE]: { status: 201, body: created } }));
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("laptop");

    const form = screen.getByRole("form", { name: "Create a token" });
    const submit = within(form).getByRole("button", { name: "Create token" }) as HTMLButtonElement;
    expect(submit.disabled).toBe(true);
    await u.type(within(form).getByLabelText("Token name"), "  eval job ");
    await u.click(submit);

    // The secret, once, with the warning.
    const secret = (await screen.findByLabelText("New token")) as HTMLInputElement;
    expect(secret.value).toBe(created.token);
    expect(screen.getByText(/it will not be shown again/i)).toBeTruthy();
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/auth/tokens/");
    expect(post.body).toEqual({ name: "eval job" });
    expect(post.headers["x-csrftoken"]).toBe("tok");
    expect((within(form).getByLabelText("Token name") as HTMLInputElement).value).toBe("");

    // The new token heads the list, by its prefix only.
    const rows = bodyRows();
    expect(rows).toHaveLength(3);
    expect(within(rows[0]!).getByText("eval job")).toBeTruthy();
    expect(within(rows[0]!).getByText("pfl_new1…")).toBeTruthy();
    expect(screen.getByRole("table", { name: "API tokens" }).textContent).not.toContain(created.token);

    await u.click(screen.getByRole("button", { name: "Copy" }));
    expect(await navigator.clipboard.readText()).toBe(created.token);
    expect(await screen.findByText("Copied to the clipboard.")).toBeTruthy();

    // Dismissed: gone for good.
    await u.click(screen.getByRole("button", { name: "Done, I have copied it" }));
    expect(screen.queryByLabelText("New token")).toBeNull();
    expect(document.body.textContent).not.toContain(created.token);
    expect(screen.queryByDisplayValue(created.token)).toBeNull();
    expect(within(bodyRows()[0]!).getByText("eval job")).toBeTruthy();
  });

  it("revokes a token after confirming, and its row disappears", async () => {
    document.cookie = "csrftoken=tok";
    const { calls } = mockFetch(routes({ "DELETE /api/auth/tokens/7/": { status: 204 } }));
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("training pipeline");

    await u.click(screen.getByRole("button", { name: "Revoke training pipeline" }));
    // Nothing is sent before the confirmation; cancel closes it.
    const confirm = screen.getByRole("group", { name: "Revoke training pipeline" });
    expect(within(confirm).getByText(/cannot be undone/)).toBeTruthy();
    await u.click(within(confirm).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("group", { name: "Revoke training pipeline" })).toBeNull();
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);

    await u.click(screen.getByRole("button", { name: "Revoke training pipeline" }));
    await u.click(screen.getByRole("button", { name: "Revoke token" }));

    await waitFor(() => expect(screen.queryByText("training pipeline")).toBeNull());
    const rows = bodyRows();
    expect(rows).toHaveLength(1);
    expect(within(rows[0]!).getByText("laptop")).toBeTruthy();
    expect(screen.getByText("Token “training pipeline” revoked.")).toBeTruthy();
    const del = calls.find((c) => c.method === "DELETE")!;
    expect(del.path).toBe("/api/auth/tokens/7/");
    expect(del.headers["x-csrftoken"]).toBe("tok");
  });

  it("keeps the row and shows the server's message when revoking fails", async () => {
    mockFetch(
      routes({
        "DELETE /api/auth/tokens/4/": {
          status: 403,
          body: { code: "permission_denied", message: "You cannot revoke this token.", extra: {} },
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("laptop");

    await u.click(screen.getByRole("button", { name: "Revoke laptop" }));
    await u.click(screen.getByRole("button", { name: "Revoke token" }));

    expect((await screen.findByRole("alert")).textContent).toBe("You cannot revoke this token.");
    expect(screen.getByText("laptop")).toBeTruthy();
    expect(bodyRows().filter((r) => r.hasAttribute("data-token-id"))).toHaveLength(2);
  });

  it("shows the API's error message when creating a token fails", async () => {
    mockFetch(
      routes({
        [CREATE]: {
          status: 400,
          body: { code: "invalid", message: "You already have a token with this name.", extra: {} },
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("laptop");

    await u.type(screen.getByLabelText("Token name"), "laptop");
    await u.click(screen.getByRole("button", { name: "Create token" }));

    expect((await screen.findByRole("alert")).textContent).toBe("You already have a token with this name.");
    expect(screen.queryByLabelText("New token")).toBeNull();
    expect(bodyRows()).toHaveLength(2);
    expect((screen.getByLabelText("Token name") as HTMLInputElement).value).toBe("laptop");
  });

  it("shows the error message when the list cannot be loaded, and retries", async () => {
    mockFetch(
      routes({
        [LIST]: [
          { status: 500, body: { code: "server_error", message: "Something broke on our side.", extra: {} } },
          { body: { results: tokens } },
        ],
      }),
    );
    const u = userEvent.setup();
    renderApp("/account/tokens");

    expect((await screen.findByRole("alert")).textContent).toBe("Something broke on our side.");
    await u.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("laptop")).toBeTruthy();
  });

  it("logs out everywhere after confirming and goes to the login page", async () => {
    document.cookie = "csrftoken=tok";
    const { calls } = mockFetch(routes({ "POST /api/auth/logout-all/": { status: 204 } }));
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("laptop");

    expect(screen.getByText(/revokes/i, { selector: "p" }).textContent).toMatch(/all your API tokens and ends all your sessions/);
    await u.click(screen.getByRole("button", { name: "Log out everywhere" }));
    expect(calls.some((c) => c.path === "/api/auth/logout-all/")).toBe(false);
    await u.click(screen.getByRole("button", { name: "Yes, log out everywhere" }));

    expect(await screen.findByText("Sign in to continue.")).toBeTruthy();
    const post = calls.find((c) => c.path === "/api/auth/logout-all/")!;
    expect(post.method).toBe("POST");
    expect(post.headers["x-csrftoken"]).toBe("tok");
  });

  it("stays on the page and shows the message when logging out everywhere fails", async () => {
    mockFetch(
      routes({
        "POST /api/auth/logout-all/": { status: 429, body: { code: "throttled", message: "Too many requests.", extra: {} } },
      }),
    );
    const u = userEvent.setup();
    renderApp("/account/tokens");
    await screen.findByText("laptop");

    await u.click(screen.getByRole("button", { name: "Log out everywhere" }));
    await u.click(screen.getByRole("button", { name: "Yes, log out everywhere" }));

    expect((await screen.findByRole("alert")).textContent).toBe("Too many requests.");
    expect(screen.getByRole("heading", { name: "API tokens" })).toBeTruthy();
  });
});
