import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch, type RecordedCall } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { adminProject } from "./testData";
import type { InviteInfo } from "./types";

const info: InviteInfo = {
  project: { id: 3, name: "Chat quality" },
  role: "annotator",
  expires_at: "2099-01-01T00:00:00Z",
  valid: true,
  reason: null,
};
const newcomer = { id: 7, username: "newbie", is_superuser: false, roles: ["annotator"], can_create_projects: false };
const anonymous = { status: 403, body: { code: "not_authenticated", message: "Sign in.", extra: {} } };

describe("InviteAcceptPage", () => {
  it("lets an anonymous visitor create an account, join and land in the project", async () => {
    let signedIn = false;
    const { calls } = mockFetch({
      "GET /api/auth/me/": () => (signedIn ? { body: newcomer } : anonymous),
      "GET /api/auth/csrf/": { body: { csrfToken: "csrf-1" } },
      "GET /api/invites/tok/": { body: info },
      "POST /api/invites/tok/accept/": (call: RecordedCall) => {
        signedIn = true;
        expect(call.body).toEqual({ username: "newbie", password: "a-long-pass-phrase" });
        return { status: 201, body: { project_id: 3, role: "annotator", username: "newbie" } };
      },
      "GET /api/projects/3/": { body: { ...adminProject, role: "annotator" } },
    });
    renderApp("/invites/tok");
    const user = userEvent.setup();
    expect(await screen.findByRole("heading", { name: "Join Chat quality" })).toBeTruthy();
    expect(screen.getByText("Annotator")).toBeTruthy();
    await user.type(await screen.findByLabelText("Username"), "newbie");
    await user.type(screen.getByLabelText("Password"), "a-long-pass-phrase");
    await user.click(screen.getByRole("button", { name: "Create account and join" }));

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(await screen.findByRole("link", { name: "Start annotating" })).toBeTruthy();
    const order = calls.map((c) => `${c.method} ${c.path}`);
    expect(order.indexOf("GET /api/auth/csrf/")).toBeLessThan(order.indexOf("POST /api/invites/tok/accept/"));
  }, 20_000);

  it("shows the password validators' message", async () => {
    mockFetch({
      "GET /api/auth/me/": anonymous,
      "GET /api/auth/csrf/": { body: { csrfToken: "csrf-1" } },
      "GET /api/invites/tok/": { body: info },
      "POST /api/invites/tok/accept/": {
        status: 400,
        body: {
          code: "invalid",
          message: "password: This password is too common.",
          extra: { fields: { password: ["This password is too common."] } },
        },
      },
    });
    renderApp("/invites/tok");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Username"), "newbie");
    await user.type(screen.getByLabelText("Password"), "password");
    await user.click(screen.getByRole("button", { name: "Create account and join" }));
    expect(await screen.findByText("This password is too common.")).toBeTruthy();
  }, 20_000);

  it("lets a signed-in user join with one click", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: newcomer },
      "GET /api/invites/tok/": { body: info },
      "POST /api/invites/tok/accept/": { status: 201, body: { project_id: 3, role: "annotator", username: "newbie" } },
      "GET /api/projects/3/": { body: { ...adminProject, role: "annotator" } },
    });
    renderApp("/invites/tok");
    const user = userEvent.setup();
    expect(await screen.findByText("newbie")).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Join Chat quality" }));
    expect(await screen.findByRole("link", { name: "Start annotating" })).toBeTruthy();
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({});
  });

  it.each([
    ["used", "already used"],
    ["expired", "has expired"],
    ["revoked", "was revoked"],
  ] as const)("explains a %s link and offers no form", async (reason, text) => {
    mockFetch({
      "GET /api/auth/me/": anonymous,
      "GET /api/invites/tok/": { body: { ...info, valid: false, reason } },
    });
    renderApp("/invites/tok");
    expect((await screen.findByRole("alert")).textContent).toContain(text);
    expect(screen.queryByRole("button")).toBeNull();
  });

  it("says an unknown link is not valid", async () => {
    mockFetch({
      "GET /api/auth/me/": anonymous,
      "GET /api/invites/nope/": () => ({ status: 404, body: { code: "not_found", message: "No such invite link.", extra: {} } }),
    });
    renderApp("/invites/nope");
    expect((await screen.findByRole("alert")).textContent).toContain("not valid");
  });
});
