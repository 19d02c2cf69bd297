import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { artifact, consoleRoutes, lineage } from "./testData";

const routes = {
  ...consoleRoutes,
  "GET /api/projects/3/artifacts/": {
    body: {
      results: [
        artifact(1, { name: "tiny-gpt2", project_id: null, size_bytes: 500 }),
        artifact(21, { name: "reward-round-2", kind: "reward", parent_id: 1 }),
        lineage.artifact,
      ],
    },
  },
  "GET /api/projects/3/artifacts/22/lineage/": { body: lineage },
  "GET /api/projects/3/artifacts/1/lineage/": {
    body: { artifact: artifact(1, { name: "tiny-gpt2", project_id: null }), ancestors: [], run: null, dataset_export: null, judgments: null, round: null },
  },
};

describe("ModelsTab", () => {
  it("lists the artifacts and shows the lineage of the selected one", async () => {
    mockFetch(routes);
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=models");

    const table = await screen.findByRole("table", { name: "Models" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(4);
    expect(within(rows[1]!).getByText("policy")).toBeTruthy();
    expect(within(rows[1]!).getByText("1.5 GB")).toBeTruthy();
    expect(within(rows[3]!).getByText("500 B")).toBeTruthy();
    expect(within(rows[3]!).getByText("· shared")).toBeTruthy();

    await u.click(within(table).getByRole("link", { name: "policy-round-2" }));
    const panel = await screen.findByTestId("lineage");
    expect(await within(panel).findByRole("heading", { name: "Lineage of policy-round-2" })).toBeTruthy();

    const chain = within(panel).getByRole("list", { name: "Ancestors" });
    expect(within(chain).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "policy-round-2 (#22, policy)",
      "tiny-gpt2 (#1, policy)",
    ]);
    expect(within(chain).getByRole("link", { name: "tiny-gpt2 (#1, policy)" }).getAttribute("href")).toBe(
      "/projects/3/ml?tab=models&model=1",
    );
    const producedBy = within(panel).getByTestId("lineage-run");
    expect(within(producedBy).getByRole("link", { name: "Run #12" }).getAttribute("href")).toBe("/projects/3/ml?tab=runs&run=12");
    expect(producedBy.textContent).toContain("ppo");
    const exp = within(panel).getByTestId("lineage-export");
    expect(within(exp).getByRole("link", { name: "Export #7" })).toBeTruthy();
    expect(exp.textContent).toContain("380 train / 40 test rows");
    expect(within(panel).getByTestId("lineage-judgments").textContent).toMatch(/^420 judgments by 5 annotators, from .+ to .+$/);
    expect(within(within(panel).getByTestId("lineage-round")).getByRole("link", { name: "Round 2" }).getAttribute("href")).toBe(
      "/projects/3/ml?tab=rounds&round=2",
    );

    // Follow the chain to the base model.
    await u.click(within(chain).getByRole("link", { name: "tiny-gpt2 (#1, policy)" }));
    expect(await screen.findByRole("heading", { name: "Lineage of tiny-gpt2" })).toBeTruthy();
    expect(screen.getByText("No parent: a base model.")).toBeTruthy();
    expect(screen.getByText("No training run (registered directly).")).toBeTruthy();
    expect(screen.getByText("Not made by a round.")).toBeTruthy();
  });

  it("shows a failed lineage load with a retry", async () => {
    mockFetch({
      ...routes,
      "GET /api/projects/3/artifacts/22/lineage/": [
        { status: 500, body: { code: "server_error", message: "Boom.", extra: {} } },
        { body: lineage },
      ],
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=models&model=22");
    expect((await screen.findByRole("alert")).textContent).toBe("Boom.");
    await u.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("heading", { name: "Lineage of policy-round-2" })).toBeTruthy();
  });
});
