import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { mockFetch } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { localToIso } from "./ExportsTab";
import { consoleRoutes, datasetExport } from "./testData";

const EXPORTS = "GET /api/projects/3/exports/";
const CREATE = "POST /api/projects/3/exports/";

const withParquet = datasetExport(8, {
  files: {
    "train.jsonl": { sha256: "a", bytes: 2048, rows: 380, url: "/api/projects/3/exports/8/files/train.jsonl" },
    "test.jsonl": { sha256: "b", bytes: 512, rows: 40, url: "/api/projects/3/exports/8/files/test.jsonl" },
    "train.parquet": { sha256: "c", bytes: 1024, rows: 380, url: "/api/projects/3/exports/8/files/train.parquet" },
    hf: { sha256: "", bytes: 4096, rows: 420 },
  },
});

describe("ExportsTab", () => {
  it("lists exports with rows and download links", async () => {
    mockFetch({
      ...consoleRoutes,
      [EXPORTS]: {
        body: {
          results: [datasetExport(7), withParquet, datasetExport(9, { status: "failed", error: "No comparison is left.", files: {}, train_rows: 0, test_rows: 0 })],
        },
      },
    });
    renderApp("/projects/3/ml?tab=exports");

    const table = await screen.findByRole("table", { name: "Dataset exports" });
    const rows = within(table).getAllByRole("row");
    expect(rows.map((r) => within(r).queryByRole("rowheader")?.textContent ?? "head")).toEqual([
      "head",
      "Export #9",
      "Export #8",
      "Export #7",
    ]);
    expect(within(rows[1]!).getByText("failed")).toBeTruthy();
    expect(within(rows[1]!).getByText("No comparison is left.")).toBeTruthy();

    const files = within(rows[2]!).getByRole("list", { name: "Files of export 8" });
    const links = within(files).getAllByRole("link");
    expect(links.map((a) => [a.textContent, a.getAttribute("href")])).toEqual([
      ["train.jsonl", "/api/projects/3/exports/8/files/train.jsonl"],
      ["test.jsonl", "/api/projects/3/exports/8/files/test.jsonl"],
      ["train.parquet", "/api/projects/3/exports/8/files/train.parquet"],
    ]);
    // hf is a folder on the server: named, not linked.
    expect(within(files).getByText("hf").tagName).toBe("SPAN");
    expect(within(rows[2]!).getByText("380", { selector: "td" })).toBeTruthy();
    expect(within(rows[2]!).getByText("40", { selector: "td" })).toBeTruthy();
    expect(within(files).getByText("380 rows, 2.0 KB")).toBeTruthy();
  });

  it("says a test split is empty and why comparisons were left out", async () => {
    const empty = datasetExport(10, {
      test_rows: 0,
      counts: { rows: 12, comparisons_judged: 20, no_consensus: 8, few_votes: 0 },
      files: { "train.jsonl": { sha256: "a", bytes: 900, rows: 12, url: "/api/projects/3/exports/10/files/train.jsonl" } },
    });
    mockFetch({ ...consoleRoutes, [EXPORTS]: { body: { results: [empty] } } });
    renderApp("/projects/3/ml?tab=exports");

    expect((await screen.findByTestId("export-10-empty-test")).textContent).toBe("empty split");
    expect(screen.getByTestId("export-10-dropped").textContent).toBe("Left out: no consensus: 8");
    const files = screen.getByRole("list", { name: "Files of export 10" });
    expect(within(files).getAllByRole("link").map((a) => a.textContent)).toEqual(["train.jsonl"]);
  });

  it("warns before creating an export without a test split", async () => {
    mockFetch({ ...consoleRoutes, [EXPORTS]: { body: { results: [datasetExport(7)] } } });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=exports");
    await screen.findByRole("table", { name: "Dataset exports" });
    await u.click(screen.getByRole("button", { name: "New export" }));
    const fraction = screen.getByLabelText("Test fraction");
    expect(screen.queryByRole("note")).toBeNull();
    await u.clear(fraction);
    await u.type(fraction, "0");
    expect(screen.getByRole("note").textContent).toContain("leaves the test split empty");
  });

  it("posts a new export and shows a 400's field errors", async () => {
    document.cookie = "csrftoken=tok";
    const created = datasetExport(10);
    const { calls } = mockFetch({
      ...consoleRoutes,
      [EXPORTS]: { body: { results: [datasetExport(7)] } },
      [CREATE]: [
        {
          status: 400,
          body: {
            code: "invalid_export",
            message: "min_votes: must be a number between 1 and 1000",
            extra: { fields: { min_votes: "must be a number between 1 and 1000", batches: "must be a list of batch ids" } },
          },
        },
        { status: 201, body: created },
      ],
    });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=exports");

    await screen.findByRole("table", { name: "Dataset exports" });
    await u.click(screen.getByRole("button", { name: "New export" }));
    const form = screen.getByTestId("new-export-form");

    await u.clear(screen.getByLabelText("Test fraction"));
    await u.type(screen.getByLabelText("Test fraction"), "0.2");
    await u.clear(screen.getByLabelText("Minimum votes"));
    await u.type(screen.getByLabelText("Minimum votes"), "2");
    await u.selectOptions(screen.getByLabelText("Consensus"), "dawid_skene");
    await u.selectOptions(screen.getByLabelText("Ties"), "keep");
    await u.click(screen.getByLabelText("Parquet"));
    await u.click(screen.getByLabelText("Hugging Face dataset (hf)"));
    await u.type(screen.getByLabelText("Judged after (optional)"), "2025-03-01T12:30");
    await u.click(within(form).getByRole("button", { name: "Create export" }));

    const alert = await screen.findByRole("alert");
    expect(within(alert).getByText("min_votes: must be a number between 1 and 1000")).toBeTruthy();
    expect(within(alert).getByText("Batches: must be a list of batch ids")).toBeTruthy();
    const minVotes = screen.getByLabelText("Minimum votes");
    expect(minVotes.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(minVotes.getAttribute("aria-describedby")!)!.textContent).toBe(
      "must be a number between 1 and 1000",
    );

    const post = calls.find((c) => `${c.method} ${c.path}` === CREATE)!;
    expect(post.headers["x-csrftoken"]).toBe("tok");
    expect(post.body).toEqual({
      test_fraction: 0.2,
      min_votes: 2,
      consensus: "dawid_skene",
      ties: "keep",
      formats: ["jsonl", "parquet", "hf"],
      judged_after: localToIso("2025-03-01T12:30"),
    });
    expect(localToIso("2025-03-01T12:30")).toMatch(/^2025-03-0[12]T\d\d:30:00\.000Z$/);

    await u.click(within(form).getByRole("button", { name: "Create export" }));
    // the new export is listed, then selected (the selection is URL state: a later render)
    await waitFor(() => expect(screen.getByTestId("export-row-10").getAttribute("aria-current")).toBe("true"));
    const row = screen.getByTestId("export-row-10");
    expect(screen.queryByTestId("new-export-form")).toBeNull();
    expect(within(row).getByRole("link", { name: "train.jsonl" }).getAttribute("href")).toBe("/api/projects/3/exports/10/files/train.jsonl");
  });

  it("checks the form before posting", async () => {
    const { calls } = mockFetch({ ...consoleRoutes, [EXPORTS]: { body: { results: [] } } });
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=exports");
    expect(await screen.findByText("No exports yet")).toBeTruthy();
    await u.click(screen.getByRole("button", { name: "New export" }));
    await u.click(screen.getByLabelText("JSONL"));
    await u.clear(screen.getByLabelText("Test fraction"));
    await u.type(screen.getByLabelText("Test fraction"), "2");
    await u.click(screen.getByRole("button", { name: "Create export" }));
    expect(screen.getByText("Pick at least one format.")).toBeTruthy();
    expect(screen.getByText("Enter a number between 0 and 0.9.")).toBeTruthy();
    expect(calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });
});
