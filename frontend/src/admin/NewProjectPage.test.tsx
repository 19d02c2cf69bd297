import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { admin, adminProject, creator } from "./testData";

describe("NewProjectPage", () => {
  it("creates a project with a live instructions preview and opens its settings", async () => {
    const { calls } = mockFetch({
      "GET /api/auth/me/": { body: creator },
      "POST /api/projects/": { status: 201, body: { ...adminProject, id: 12, name: "Safety" } },
      "GET /api/projects/12/": { body: { ...adminProject, id: 12, name: "Safety" } },
    });
    renderApp("/projects/new");
    const user = userEvent.setup();

    await user.type(await screen.findByLabelText("Name"), "Safety");
    await user.click(screen.getByLabelText("Instructions (markdown)"));
    await user.paste("## Rules\n\nPrefer **safe** answers.");
    const preview = screen.getByRole("region", { name: "Instructions preview" });
    expect(preview.querySelector("h2")?.textContent).toBe("Rules");
    expect(preview.querySelector("strong")?.textContent).toBe("safe");
    await user.clear(screen.getByLabelText("Judgments per comparison (k)"));
    await user.type(screen.getByLabelText("Judgments per comparison (k)"), "5");
    await user.click(screen.getByRole("button", { name: "Create project" }));

    expect(await screen.findByRole("heading", { name: "Settings — Safety" })).toBeTruthy();
    const post = calls.find((c) => c.method === "POST" && c.path === "/api/projects/");
    expect(post?.body).toEqual({
      name: "Safety",
      description: "",
      instructions: "## Rules\n\nPrefer **safe** answers.",
      overlap_k: 5,
    });
  }, 20_000);

  it("shows the server's field message and stays on the form", async () => {
    mockFetch({
      "GET /api/auth/me/": { body: creator },
      "POST /api/projects/": {
        status: 400,
        body: {
          code: "invalid",
          message: "overlap_k: Ensure this value is less than or equal to 50.",
          extra: { fields: { overlap_k: ["Ensure this value is less than or equal to 50."] } },
        },
      },
    });
    renderApp("/projects/new");
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText("Name"), "Big");
    await user.clear(screen.getByLabelText("Judgments per comparison (k)"));
    await user.type(screen.getByLabelText("Judgments per comparison (k)"), "99");
    await user.click(screen.getByRole("button", { name: "Create project" }));

    expect(await screen.findByText("Ensure this value is less than or equal to 50.")).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toContain("overlap_k");
    expect(screen.getByRole("heading", { name: "New project" })).toBeTruthy();
  }, 20_000);

  it("asks for a name before sending anything", async () => {
    const { calls } = mockFetch({ "GET /api/auth/me/": { body: creator } });
    renderApp("/projects/new");
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Create project" }));
    expect(screen.getByText("A project needs a name.")).toBeTruthy();
    expect(calls.some((c) => c.method === "POST")).toBe(false);
  });

  it("tells users without the permission that they may not create projects", async () => {
    mockFetch({ "GET /api/auth/me/": { body: admin } });
    renderApp("/projects/new");
    expect((await screen.findByRole("alert")).textContent).toContain("may not create projects");
    expect(screen.queryByRole("button", { name: "Create project" })).toBeNull();
  });
});
