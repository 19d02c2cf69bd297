import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { Project } from "../api";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";

const user = { id: 1, username: "bob", is_superuser: false, roles: ["annotator", "project_admin"] };

const projects: Project[] = [
  { id: 3, name: "Chat quality", description: "Compare two chat replies.", role: "annotator", created_at: "2025-01-02T10:00:00Z" },
  { id: 5, name: "Summaries", description: "Pick the better summary.", role: "project_admin", created_at: "2025-01-03T10:00:00Z" },
];

function page(results: Project[]) {
  return { body: { count: results.length, next: null, previous: null, results } };
}

describe("ProjectsPage", () => {
  it("renders a row per project with name, description and role", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/": page(projects) });
    renderApp("/projects");

    expect(await screen.findByRole("heading", { name: "Your projects" })).toBeTruthy();
    const link = await screen.findByRole("link", { name: "Chat quality" });
    expect(link.getAttribute("href")).toBe("/projects/3");

    const rows = screen.getAllByRole("row").slice(1); // skip the header row
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getByText("Compare two chat replies.")).toBeTruthy();
    expect(within(rows[0]!).getByText("Annotator")).toBeTruthy();
    expect(within(rows[1]!).getByRole("link", { name: "Summaries" }).getAttribute("href")).toBe("/projects/5");
    expect(within(rows[1]!).getByText("Project admin")).toBeTruthy();
    expect(screen.queryByText("You are not a member of any project yet.")).toBeNull();
    // Top bar
    expect(screen.getByText("Preflab")).toBeTruthy();
    expect(screen.getByText("bob")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Log out" })).toBeTruthy();
  });

  it("is also served at /", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/": page(projects) });
    renderApp("/");
    expect(await screen.findByRole("link", { name: "Summaries" })).toBeTruthy();
  });

  it("shows the empty state when the user has no projects", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/": page([]) });
    renderApp("/projects");

    expect(await screen.findByText("You are not a member of any project yet.")).toBeTruthy();
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("shows the error message when loading fails", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/": { throws: new TypeError("Failed to fetch") },
    });
    renderApp("/projects");

    expect((await screen.findByRole("alert")).textContent).toMatch(/could not reach the server/i);
  });

  it("opens the project page from a row", async () => {
    const detail = {
      ...projects[1]!,
      instructions: "",
      overlap_k: 3,
      lease_ttl_seconds: 600,
      allow_tie: true,
      allow_both_bad: true,
      strength_scale: true,
      rationale_mode: "optional",
      gold_rate: 0,
    };
    mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/": page(projects),
      "GET /api/projects/5/": { body: detail },
    });
    const u = userEvent.setup();
    renderApp("/projects");

    await u.click(await screen.findByRole("link", { name: "Summaries" }));

    expect(await screen.findByRole("heading", { name: "Summaries" })).toBeTruthy();
    expect(screen.getByText("Pick the better summary.")).toBeTruthy();
  });

  it("links annotator rows straight to the annotate page", async () => {
    mockFetch({ "GET /api/auth/me/": { body: user }, "GET /api/projects/": page(projects) });
    renderApp("/projects");

    const rows = (await screen.findAllByRole("row")).slice(1);
    expect(within(rows[0]!).getByRole("link", { name: "Annotate Chat quality" }).getAttribute("href")).toBe(
      "/projects/3/annotate",
    );
    expect(within(rows[0]!).getByRole("link", { name: "Chat quality" }).getAttribute("href")).toBe("/projects/3");
    expect(within(rows[1]!).queryByRole("link", { name: /^Annotate/ })).toBeNull();
  });

  it("offers “New project” only to users who may create projects", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: { ...user, can_create_projects: true } },
      "GET /api/projects/": page(projects),
    });
    renderApp("/projects");
    const link = await screen.findByRole("link", { name: "New project" });
    expect(link.getAttribute("href")).toBe("/projects/new");
  });

  it("has no “New project” link without the permission", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: { ...user, can_create_projects: false } },
      "GET /api/projects/": page(projects),
    });
    renderApp("/projects");
    expect(await screen.findByRole("link", { name: "Chat quality" })).toBeTruthy();
    expect(screen.queryByRole("link", { name: "New project" })).toBeNull();
  });

  it("lists archived projects on request", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: user },
      "GET /api/projects/": page(projects),
      "GET /api/projects/?archived=only": page([{ ...projects[1]!, id: 8, name: "Old summaries" }]),
    });
    renderApp("/projects");
    const user_ = userEvent.setup();
    await user_.click(await screen.findByRole("button", { name: "Show archived projects" }));
    const link = await screen.findByRole("link", { name: "Old summaries" });
    expect(link.getAttribute("href")).toBe("/projects/8");
    expect(calls.filter((c) => c.path === "/api/projects/?archived=only")).toHaveLength(1);
  });
});
