import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockFetch, type MockHandler, type MockRoute } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { browseQuery } from "./browseApi";
import type { ComparisonHistory, ComparisonRow, JudgmentRow, PromptRow } from "./types";

const admin = { id: 1, username: "root", is_superuser: false, roles: ["project_admin"] };
const BASE = "/api/projects/3/data";

function comparison(id: number, extra: Partial<ComparisonRow> = {}): ComparisonRow {
  return {
    id,
    batch: { id: 9, name: "import 1" },
    prompt: { id: 100 + id, external_id: `p${id}`, preview: `Question ${id}?` },
    response_a: { id: 1000 + id, preview: `Answer A to ${id}` },
    response_b: { id: 2000 + id, preview: `Answer B to ${id}` },
    gold: false,
    gold_choice: null,
    status: "complete",
    target_votes: 3,
    judgment_count: 3,
    lease_count: 0,
    created_at: "2026-11-01T10:00:00Z",
    votes: 3,
    consensus: "A",
    agreement: 2 / 3,
    tally: { A: 2, B: 1, tie: 0, both_bad: 0 },
    ...extra,
  };
}

const judgment: JudgmentRow = {
  id: 77,
  annotator: { id: 7, username: "alice" },
  comparison_id: 12,
  prompt: { id: 112, external_id: "p12" },
  batch: { id: 9, name: "import 1" },
  choice: "B",
  strength: 4,
  time_taken_ms: 4200,
  swapped: false,
  created_at: "2026-11-02T10:00:00Z",
  gold: false,
  gold_choice: null,
};

const prompt: PromptRow = {
  id: 112,
  external_id: "p12",
  preview: "Question 12?",
  turns: 1,
  created_at: "2026-11-01T09:00:00Z",
  comparisons: 4,
  batch: { id: 9, name: "import 1" },
};

const history: ComparisonHistory = {
  ...comparison(12),
  prompt: { id: 112, external_id: "p12", messages: [{ role: "user", content: "Explain **closures**" }], metadata: {} },
  response_a: {
    id: 1012,
    content: "A **bold** answer<img src=x onerror=\"window.hacked=1\"><script>window.hacked=2</script>",
    source: "imported",
    model_artifact_id: null,
    round_number: null,
    metadata: {},
  },
  response_b: { id: 2012, content: "Plain *B*", source: "imported", model_artifact_id: null, round_number: null, metadata: {} },
  judgments: [
    {
      id: 77,
      annotator: { id: 7, username: "alice" },
      annotator_excluded: true,
      assignment_id: 5,
      choice: "A",
      strength: 3,
      rationale: "<b>clearer</b>",
      time_taken_ms: 4200,
      swapped: true,
      created_at: "2026-11-02T10:00:00Z",
    },
  ],
  leases: [
    {
      id: 5,
      annotator: { id: 7, username: "alice" },
      status: "submitted",
      swapped: true,
      created_at: "2026-11-02T09:59:00Z",
      expires_at: "2026-11-02T10:09:00Z",
      closed_at: "2026-11-02T10:00:00Z",
      skip_reason: "",
    },
    {
      id: 6,
      annotator: { id: 8, username: "bob" },
      status: "skipped",
      swapped: false,
      created_at: "2026-11-02T11:00:00Z",
      expires_at: "2026-11-02T11:10:00Z",
      closed_at: "2026-11-02T11:01:00Z",
      skip_reason: "unreadable",
    },
  ],
  revisions: [],
};

const bob = { id: 8, username: "bob" };
const undoneByBob = {
  annotator: bob,
  annotator_excluded: false,
  assignment_id: 6,
  swapped: false,
  time_taken_ms: 900,
  undone_by: bob,
};
/** bob judged tie, undid it, judged B instead (#80) and undid that too; alice's #77 stands. */
const historyWithUndos: ComparisonHistory = {
  ...history,
  revisions: [
    {
      ...undoneByBob,
      id: 1,
      judgment_id: 70,
      choice: "tie",
      strength: null,
      rationale: "first thought",
      judged_at: "2026-11-02T09:50:00Z",
      undone_at: "2026-11-02T09:51:00Z",
      resubmitted_judgment_id: 80,
    },
    {
      ...undoneByBob,
      id: 2,
      judgment_id: 80,
      choice: "B",
      strength: 2,
      rationale: "second thought",
      judged_at: "2026-11-02T10:05:00Z",
      undone_at: "2026-11-02T10:06:00Z",
      resubmitted_judgment_id: null,
    },
  ],
};

function page<T>(results: T[], next: string | null = null) {
  return { body: { results, next_cursor: next, limit: 50 } };
}

function open(routes: Record<string, MockRoute | MockRoute[] | MockHandler>) {
  const mock = mockFetch({ "GET /api/auth/me/": { body: admin }, ...routes });
  renderApp("/projects/3/data");
  return mock;
}

const listPath = (tab: string, query = "limit=50") => `GET ${BASE}/${tab}/?${query}`;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("browseQuery", () => {
  it("sends only the filters that are set, the cursor and the page size", () => {
    expect(browseQuery({ batch: " 4 ", status: "", agreement_min: "0.5" }, "abc")).toBe(
      "batch=4&agreement_min=0.5&cursor=abc&limit=50",
    );
    expect(browseQuery({}, null, 10)).toBe("limit=10");
  });
});

describe("DataBrowserPage", () => {
  it("lists comparisons with both responses, consensus, agreement, gold and status", async () => {
    open({ [listPath("comparisons")]: page([comparison(12), comparison(11, { gold: true, gold_choice: "B", status: "gold" })]) });
    const table = await screen.findByRole("table", { name: "Comparisons" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(within(rows[1]!).getByText("Answer A to 12")).toBeTruthy();
    expect(within(rows[1]!).getByText("Answer B to 12")).toBeTruthy();
    expect(within(rows[1]!).getByText("67%")).toBeTruthy();
    expect(within(rows[2]!).getByText("gold: B")).toBeTruthy();
    expect(within(rows[2]!).getByText("gold", { selector: "td" })).toBeTruthy();
  });

  it("follows next_cursor forward and walks the cursor stack back", async () => {
    const user = userEvent.setup();
    const { calls } = open({
      [listPath("comparisons")]: page([comparison(12)], "c1"),
      [listPath("comparisons", "cursor=c1&limit=50")]: page([comparison(11)], "c2"),
      [listPath("comparisons", "cursor=c2&limit=50")]: page([comparison(10)]),
    });
    await screen.findByText("Answer A to 12");
    expect((screen.getByRole("button", { name: "Previous page" }) as HTMLButtonElement).disabled).toBe(true);
    await user.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByText("Answer A to 11");
    await user.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByText("Answer A to 10");
    expect(screen.getByText("Page 3")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);
    await user.click(screen.getByRole("button", { name: "Previous page" }));
    await screen.findByText("Answer A to 11");
    await user.click(screen.getByRole("button", { name: "Previous page" }));
    await screen.findByText("Answer A to 12");
    const lists = calls.filter((c) => c.path.startsWith(`${BASE}/comparisons/`)).map((c) => c.path.split("?")[1]);
    expect(lists).toEqual(["limit=50", "cursor=c1&limit=50", "cursor=c2&limit=50", "cursor=c1&limit=50", "limit=50"]);
  });

  it("applies filters from the first page and shows a refused filter's message", async () => {
    const user = userEvent.setup();
    const { calls } = open({
      [listPath("comparisons")]: page([comparison(12)], "c1"),
      [listPath("comparisons", "cursor=c1&limit=50")]: page([comparison(11)]),
      [listPath("comparisons", "status=complete&agreement_min=0.6&limit=50")]: page([comparison(5)]),
      [listPath("comparisons", "agreement_min=2&limit=50")]: {
        status: 400,
        body: {
          code: "invalid",
          message: "agreement_min: Ensure this value is less than or equal to 1.0.",
          extra: { fields: { agreement_min: ["Ensure this value is less than or equal to 1.0."] } },
        },
      },
    });
    await screen.findByText("Answer A to 12");
    await user.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByText("Answer A to 11");
    await user.selectOptions(screen.getByLabelText("Status"), "complete");
    await user.type(screen.getByLabelText("Agreement from"), "0.6");
    await user.click(screen.getByRole("button", { name: "Apply" }));
    await screen.findByText("Answer A to 5");
    expect(screen.getByText("Page 1")).toBeTruthy();
    expect(calls.at(-1)!.path).toBe(`${BASE}/comparisons/?status=complete&agreement_min=0.6&limit=50`);

    await user.selectOptions(screen.getByLabelText("Status"), "");
    await user.clear(screen.getByLabelText("Agreement from"));
    await user.type(screen.getByLabelText("Agreement from"), "2");
    await user.click(screen.getByRole("button", { name: "Apply" }));
    expect((await screen.findByRole("alert")).textContent).toContain("agreement_min");
  });

  it("links a judgment's annotator to the annotator's page and opens its comparison", async () => {
    const user = userEvent.setup();
    open({
      [listPath("comparisons")]: page([comparison(12)]),
      [listPath("judgments")]: page([judgment]),
      [`GET ${BASE}/comparisons/12/`]: { body: history },
    });
    await screen.findByText("Answer A to 12");
    await user.click(screen.getByRole("tab", { name: "Judgments" }));
    const table = await screen.findByRole("table", { name: "Judgments" });
    expect(within(table).getByRole("link", { name: "alice" }).getAttribute("href")).toBe("/projects/3/annotators/7");
    expect(within(table).getByText("significantly")).toBeTruthy();
    await user.click(within(table).getByRole("button", { name: "12" }));
    expect(await screen.findByRole("article", { name: "Comparison 12" })).toBeTruthy();
  });

  it("shows a comparison's responses side by side, sanitized, with its whole history", async () => {
    const user = userEvent.setup();
    open({
      [listPath("comparisons")]: page([comparison(12)]),
      [`GET ${BASE}/comparisons/12/`]: { body: history },
    });
    await user.click(await screen.findByRole("button", { name: "12" }));
    const detail = await screen.findByRole("article", { name: "Comparison 12" });
    const a = within(detail).getByRole("region", { name: "Response A" });
    const b = within(detail).getByRole("region", { name: "Response B" });
    expect(a.querySelector("strong")?.textContent).toBe("bold");
    expect(a.querySelector("script")).toBeNull();
    expect(a.innerHTML).not.toContain("onerror");
    expect(b.querySelector("em")?.textContent).toBe("B");
    expect(within(detail).getByRole("region", { name: "Prompt" }).querySelector("strong")?.textContent).toBe("closures");
    expect(within(detail).getByTestId("votes").textContent).toContain("agreement 67%");

    const judgments = within(detail).getByRole("table", { name: "Judgment history" });
    expect(within(judgments).getByRole("link", { name: "alice" }).getAttribute("href")).toBe("/projects/3/annotators/7");
    expect(within(judgments).getByText("<b>clearer</b>")).toBeTruthy(); // a rationale is text
    expect(within(judgments).getByText("excluded", { exact: false })).toBeTruthy();
    expect(within(judgments).getByText("4.2 s")).toBeTruthy();
    const leases = within(detail).getByRole("table", { name: "Lease history" });
    expect(within(leases).getByText("unreadable")).toBeTruthy();
    expect(within(leases).getByText("skipped")).toBeTruthy();

    await user.click(screen.getByRole("button", { name: "← Back to the list" }));
    expect(await screen.findByRole("table", { name: "Comparisons" })).toBeTruthy();
  });

  it("lists undone judgments in the history, marked undone, with what replaced them", async () => {
    mockFetch({ "GET /api/auth/me/": { body: admin }, [`GET ${BASE}/comparisons/12/`]: { body: historyWithUndos } });
    renderApp("/projects/3/data/comparisons/12");
    const detail = await screen.findByRole("article", { name: "Comparison 12" });
    const table = within(detail).getByRole("table", { name: "Judgment history" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(3);
    const [first, current, second] = rows as [HTMLElement, HTMLElement, HTMLElement];
    const cells = (row: HTMLElement) => within(row).getAllByRole("cell").map((cell) => cell.textContent);
    // in submit order: bob's first answer, alice's (current), bob's second answer
    expect(rows.map((row) => cells(row)[0])).toEqual(["70", "77", "80"]);
    expect(cells(first)).toEqual([
      "70",
      "bob undone",
      "Tie",
      "—",
      "first thought",
      "0.9 s",
      "A left",
      "2026-11-02 09:50",
      "2026-11-02 09:51 by bob · replaced by #80",
    ]);
    expect(cells(second).slice(1, 5)).toEqual(["bob undone", "B", "slightly", "second thought"]);
    expect(cells(second)[8]).toBe("2026-11-02 10:06 by bob · not judged again");
    expect(rows.map((row) => row.className)).toEqual(["undone", "", "undone"]);
    expect(within(current).queryByText("undone", { exact: false })).toBeNull();
    expect(cells(current)[8]).toBe("—");
  });

  it("shows the history of a comparison whose only judgments were undone", async () => {
    const onlyUndone = { ...historyWithUndos, judgments: [], judgment_count: 0 };
    mockFetch({ "GET /api/auth/me/": { body: admin }, [`GET ${BASE}/comparisons/12/`]: { body: onlyUndone } });
    renderApp("/projects/3/data/comparisons/12");
    const detail = await screen.findByRole("article", { name: "Comparison 12" });
    expect(within(detail).queryByText("No judgments yet.")).toBeNull();
    const table = within(detail).getByRole("table", { name: "Judgment history" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((row) => row.className)).toEqual(["undone", "undone"]);
  });

  it("goes from a prompt to its comparisons", async () => {
    const user = userEvent.setup();
    const { calls } = open({
      [listPath("comparisons")]: page([comparison(12)]),
      [listPath("prompts")]: page([prompt]),
      [listPath("comparisons", "prompt=112&limit=50")]: page([comparison(12)]),
    });
    await screen.findByText("Answer A to 12");
    await user.click(screen.getByRole("tab", { name: "Prompts" }));
    const table = await screen.findByRole("table", { name: "Prompts" });
    expect(within(table).getByText("Question 12?")).toBeTruthy();
    await user.click(within(table).getByRole("button", { name: "4" }));
    await waitFor(() => expect(calls.at(-1)!.path).toBe(`${BASE}/comparisons/?prompt=112&limit=50`));
    expect(((await screen.findByLabelText("Prompt id")) as HTMLInputElement).value).toBe("112");
  });

  it("tells an annotator that the data is for admins and ML engineers", async () => {
    open({
      [listPath("comparisons")]: {
        status: 403,
        body: { code: "permission_denied", message: "You do not have the role.", extra: {} },
      },
    });
    expect((await screen.findByRole("alert")).textContent).toContain("admins and ML engineers");
  });

  it("opens a comparison from its own link", async () => {
    mockFetch({ "GET /api/auth/me/": { body: admin }, [`GET ${BASE}/comparisons/12/`]: { body: history } });
    renderApp("/projects/3/data/comparisons/12");
    expect(await screen.findByRole("article", { name: "Comparison 12" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "← Data" }).getAttribute("href")).toBe("/projects/3/data");
  });
});
