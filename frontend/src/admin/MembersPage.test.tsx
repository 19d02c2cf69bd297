import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch, type MockHandler, type MockRoute } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { admin, invites, members } from "./testData";

type Routes = Record<string, MockRoute | MockRoute[] | MockHandler>;

function routes(extra: Routes = {}): Routes {
  return {
    "GET /api/auth/me/": { body: admin },
    "GET /api/projects/3/members/": { body: members },
    "GET /api/projects/3/invites/": { body: invites },
    ...extra,
  };
}

function memberRows() {
  return within(screen.getByRole("table", { name: "Members" })).getAllByRole("row").slice(1);
}

describe("MembersPage", () => {
  it("lists members with role, activity and invite links", async () => {
    mockFetch(routes());
    renderApp("/projects/3/members");
    expect(await screen.findByRole("table", { name: "Members" })).toBeTruthy();
    const rows = memberRows();
    expect(rows).toHaveLength(2);
    expect(within(rows[1]!).getByText("bob")).toBeTruthy();
    expect(within(rows[1]!).getByText("42")).toBeTruthy();
    expect((within(rows[1]!).getByLabelText("Role of bob") as HTMLSelectElement).value).toBe("annotator");
    const inviteTable = await screen.findByRole("table", { name: "Invite links" });
    const inviteRows = within(inviteTable).getAllByRole("row").slice(1);
    expect(within(inviteRows[0]!).getByText("Active")).toBeTruthy();
    expect(within(inviteRows[1]!).getByText("Used")).toBeTruthy();
    expect(within(inviteRows[1]!).getByText("by carol")).toBeTruthy();
    expect(within(inviteRows[1]!).queryByRole("button")).toBeNull();
  });

  it("adds an existing user and creates a new account", async () => {
    const added = { ...members[1]!, user_id: 5, username: "carol", role: "ml_engineer" as const, judgment_count: 0 };
    const { calls } = mockFetch(
      routes({
        "POST /api/projects/3/members/": [
          { status: 201, body: added },
          { status: 201, body: { ...added, user_id: 6, username: "dave", role: "annotator" } },
        ],
      }),
    );
    renderApp("/projects/3/members");
    const user = userEvent.setup();
    const form = await screen.findByRole("form", { name: "Add a member" });
    await user.type(within(form).getByLabelText("Username or email"), "carol@example.org");
    await user.selectOptions(within(form).getByLabelText("Role"), "ml_engineer");
    await user.click(within(form).getByRole("button", { name: "Add member" }));
    expect(await screen.findByText("carol")).toBeTruthy();

    await user.click(within(form).getByLabelText("New account"));
    await user.type(within(form).getByLabelText("Username"), "dave");
    await user.type(within(form).getByLabelText("Password"), "long-enough-secret-1");
    await user.click(within(form).getByRole("button", { name: "Add member" }));
    expect(await screen.findByText("dave")).toBeTruthy();

    const posts = calls.filter((c) => c.method === "POST");
    expect(posts.map((c) => c.body)).toEqual([
      { role: "ml_engineer", user: "carol@example.org" },
      { role: "ml_engineer", username: "dave", password: "long-enough-secret-1" },
    ]);
    expect(memberRows()).toHaveLength(4);
  }, 20_000);

  it("changes a role and shows the last-admin refusal", async () => {
    const { calls } = mockFetch(
      routes({
        "PATCH /api/projects/3/members/2/": { body: { ...members[1]!, role: "project_admin" } },
        "PATCH /api/projects/3/members/1/": {
          status: 409,
          body: { code: "last_project_admin", message: "This is the project's last admin.", extra: {} },
        },
      }),
    );
    renderApp("/projects/3/members");
    const user = userEvent.setup();
    await user.selectOptions(await screen.findByLabelText("Role of bob"), "project_admin");
    expect(calls.find((c) => c.method === "PATCH")?.body).toEqual({ role: "project_admin" });
    await user.selectOptions(screen.getByLabelText("Role of alice"), "annotator");
    expect((await screen.findByRole("alert")).textContent).toContain("last admin");
    expect((screen.getByLabelText("Role of alice") as HTMLSelectElement).value).toBe("project_admin");
  });

  it("removes a member only after confirming", async () => {
    const { calls } = mockFetch(routes({ "DELETE /api/projects/3/members/2/": { status: 204 } }));
    renderApp("/projects/3/members");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Remove bob" }));
    expect(calls.some((c) => c.method === "DELETE")).toBe(false);
    await user.click(screen.getByRole("button", { name: "Confirm removal" }));
    await screen.findByRole("button", { name: "Remove alice" });
    expect(calls.filter((c) => c.method === "DELETE")).toHaveLength(1);
    expect(screen.queryByText("bob")).toBeNull();
  });

  it("creates an invite link, shows it once, and revokes an invite", async () => {
    const created = {
      ...invites[0]!,
      id: 10,
      role: "ml_engineer" as const,
      token: "tok-123",
      path: "/invites/tok-123",
    };
    const { calls } = mockFetch(
      routes({
        "POST /api/projects/3/invites/": { status: 201, body: created },
        "DELETE /api/projects/3/invites/9/": { status: 204 },
      }),
    );
    renderApp("/projects/3/members");
    const user = userEvent.setup();
    await screen.findByRole("table", { name: "Invite links" });
    await user.selectOptions(screen.getByLabelText("Invite role"), "ml_engineer");
    await user.selectOptions(screen.getByLabelText("Expires after"), "24");
    await user.click(screen.getByRole("button", { name: "Create invite link" }));
    const link = (await screen.findByLabelText("Invite link")) as HTMLInputElement;
    expect(link.value).toBe(`${window.location.origin}/invites/tok-123`);
    expect(calls.find((c) => c.path === "/api/projects/3/invites/" && c.method === "POST")?.body).toEqual({
      role: "ml_engineer",
      expires_in_hours: 24,
    });

    await user.click(screen.getByRole("button", { name: "Revoke invite 9" }));
    expect(await screen.findByText("Revoked")).toBeTruthy();
    expect(calls.some((c) => c.method === "DELETE" && c.path === "/api/projects/3/invites/9/")).toBe(true);
  });

  it("tells non-admins they cannot manage members", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: admin },
      "GET /api/projects/3/members/": {
        status: 403,
        body: { code: "permission_denied", message: "No.", extra: {} },
      },
    });
    renderApp("/projects/3/members");
    expect((await screen.findByRole("alert")).textContent).toContain("Only the project’s admins");
  });
});
