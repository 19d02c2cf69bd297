import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { artifact, consoleRoutes, defaultConfig, mlProject, mlUser, round, steps } from "./testData";

describe("ML console page", () => {
  it("is linked from the project page for ML engineers and superusers only", async () => {
    mockFetch(consoleRoutes);
    const { unmount } = renderApp("/projects/3");
    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "ML console" }).getAttribute("href")).toBe("/projects/3/ml");
    unmount();

    mockFetch({ ...consoleRoutes, "GET /api/projects/3/": { body: { ...mlProject, role: "annotator" } } });
    const second = renderApp("/projects/3");
    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.queryByRole("link", { name: "ML console" })).toBeNull();
    second.unmount();

    mockFetch({
      "GET /api/auth/me/": { body: { ...mlUser, is_superuser: true } },
      "GET /api/projects/3/": { body: { ...mlProject, role: null } },
    });
    renderApp("/projects/3");
    expect(await screen.findByRole("link", { name: "ML console" })).toBeTruthy();
  });

  it("starts a round with the defaults and shows its step timeline (the browser test's path)", async () => {
    const created = round(1, { status: "queued" });
    const { calls } = mockFetch({
      ...consoleRoutes,
      "GET /api/projects/3/rounds/": { body: { results: [] } },
      "GET /api/projects/3/rounds/defaults/": { body: { base_policy: null, config: defaultConfig } },
      "GET /api/projects/3/artifacts/": { body: { results: [artifact(1)] } },
      "POST /api/projects/3/rounds/": { status: 201, body: created },
      "GET /api/projects/3/rounds/1/": { body: { ...created, status: "running", steps: steps({ collect: { status: "running" } }) } },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(screen.getByText("ML console", { selector: ".eyebrow" })).toBeTruthy();
    expect(await screen.findByText("No rounds yet")).toBeTruthy();
    expect(screen.getByRole("tab", { name: "Rounds" }).getAttribute("aria-selected")).toBe("true");

    await u.click(screen.getByRole("button", { name: "Start a round" }));
    await screen.findByLabelText("Algorithm");
    await u.click(screen.getByRole("button", { name: "Start" }));

    const timeline = await screen.findByTestId("round-steps");
    const items = within(timeline).getAllByRole("listitem");
    expect(items).toHaveLength(6);
    for (const [i, name] of ["Collect", "Export", "Reward", "Policy", "Generate", "Published"].entries()) {
      expect(within(items[i]!).getByText(name)).toBeTruthy();
      expect(within(items[i]!).getByTestId(/^round-step-status-/).textContent).toMatch(/^(pending|running|done|failed|skipped|cancelled)$/);
    }
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.body).toEqual({ base_policy: null, config: defaultConfig });
  });

  it("switches tabs with clicks and arrow keys, keeping the tab in the URL", async () => {
    mockFetch({
      ...consoleRoutes,
      "GET /api/projects/3/rounds/": { body: { results: [] } },
      "GET /api/projects/3/training-runs/": { body: { results: [] } },
      "GET /api/projects/3/artifacts/": { body: { results: [] } },
      "GET /api/projects/3/exports/": { body: { results: [] } },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml");

    const tabs = await screen.findAllByRole("tab");
    expect(tabs.map((t) => t.textContent)).toEqual(["Rounds", "Training runs", "Models", "Exports"]);
    await u.click(screen.getByRole("tab", { name: "Models" }));
    expect(await screen.findByText("No models yet")).toBeTruthy();
    expect(screen.getByRole("tabpanel").getAttribute("aria-labelledby")).toBe("ml-tab-models");

    screen.getByRole("tab", { name: "Models" }).focus();
    await u.keyboard("{ArrowRight}");
    expect(await screen.findByText("No exports yet")).toBeTruthy();
    expect(document.activeElement).toBe(screen.getByRole("tab", { name: "Exports" }));
    await u.keyboard("{ArrowRight}");
    expect(await screen.findByText("No rounds yet")).toBeTruthy();
    await u.keyboard("{ArrowLeft}");
    expect(await screen.findByText("No exports yet")).toBeTruthy();
  });

  it("says so when the project does not exist", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: mlUser },
      "GET /api/projects/9/": { status: 404, body: { code: "not_found", message: "Not found.", extra: {} } },
      "GET /api/projects/9/rounds/": { status: 404, body: { code: "not_found", message: "Not found.", extra: {} } },
    });
    renderApp("/projects/9/ml");
    expect(await screen.findByRole("heading", { name: "Project not found" })).toBeTruthy();
  });
});
