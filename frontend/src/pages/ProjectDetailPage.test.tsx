import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { ProjectDetail } from "../api";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";

const user = { id: 1, username: "bob", is_superuser: false, roles: ["annotator"] };

const project: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "Compare two chat replies.",
  instructions: "## How to judge\n\nPrefer **helpful** replies. <script>alert(1)</script>[x](javascript:alert(2))",
  role: "annotator",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: false,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0.05,
  created_at: "2025-01-02T10:00:00Z",
};

describe("ProjectDetailPage", () => {
  it("loads the project, renders its instructions and links annotators to the queue", async () => {
    const { calls } = mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/3/": { body: project } });
    const { container } = renderApp("/projects/3");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByText("Compare two chat replies.")).toBeTruthy();
    expect(screen.getByText("Annotator")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Start annotating" }).getAttribute("href")).toBe("/projects/3/annotate");

    const instructions = screen.getByRole("region", { name: "Instructions" });
    expect(within(instructions).getByRole("heading", { name: "How to judge" })).toBeTruthy();
    expect(within(instructions).getByText("helpful").tagName).toBe("STRONG");
    expect(container.querySelector("script")).toBeNull();
    expect(container.innerHTML).not.toContain("javascript:");
    expect(calls.map((c) => `${c.method} ${c.path}`)).toContain("GET /api/projects/3/");
  });

  it("has no annotate link for other roles", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/3/": { body: { ...project, role: "project_admin", instructions: "" } },
    });
    renderApp("/projects/3");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByText("Project admin")).toBeTruthy();
    expect(screen.queryByRole("link", { name: "Start annotating" })).toBeNull();
    expect(screen.getByText("No instructions.")).toBeTruthy();
  });

  it("links project admins to the quality dashboard", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/3/": { body: { ...project, role: "project_admin" } },
    });
    renderApp("/projects/3");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Quality dashboard" }).getAttribute("href")).toBe("/projects/3/quality");
  });

  it("has no quality dashboard link for annotators", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/3/": { body: project } });
    renderApp("/projects/3");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Start annotating" })).toBeTruthy();
    expect(screen.queryByRole("link", { name: "Quality dashboard" })).toBeNull();
  });

  it("links superusers to the quality dashboard whatever their role", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: { ...user, is_superuser: true } },
      "GET /api/projects/3/": { body: { ...project, role: null } },
    });
    renderApp("/projects/3");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Quality dashboard" }).getAttribute("href")).toBe("/projects/3/quality");
  });

  it("says so when the project is not visible (404)", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/9/": { status: 404, body: { code: "not_found", message: "Not found.", extra: {} } },
    });
    renderApp("/projects/9");

    expect(await screen.findByRole("heading", { name: "Project not found" })).toBeTruthy();
  });

  it("links project admins to settings, members, import, data and exports", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/3/": { body: { ...project, role: "project_admin" } },
    });
    renderApp("/projects/3");
    const nav = await screen.findByRole("navigation", { name: "Project administration" });
    const hrefs = Object.fromEntries(
      within(nav)
        .getAllByRole("link")
        .map((a) => [a.textContent, a.getAttribute("href")]),
    );
    expect(hrefs).toEqual({
      Settings: "/projects/3/settings",
      Members: "/projects/3/members",
      "Import data": "/projects/3/import",
      "Browse data": "/projects/3/data",
      Exports: "/projects/3/ml?tab=exports",
    });
  });

  it("shows no administration links to annotators", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/3/": { body: project } });
    renderApp("/projects/3");
    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.queryByRole("navigation", { name: "Project administration" })).toBeNull();
    expect(screen.queryByRole("link", { name: "Settings" })).toBeNull();
  });

  it("says when the project is archived", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/3/": { body: { ...project, archived_at: "2025-02-01T10:00:00Z" } },
    });
    renderApp("/projects/3");
    expect((await screen.findByRole("note")).textContent).toContain("archived");
  });
});
