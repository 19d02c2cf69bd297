import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api";
import { annotator, annotators, exclusion, qualityData } from "../test/qualityFixture";
import { AnnotatorTable, ThresholdLegend, sortAnnotators } from "./AnnotatorTable";

function renderTable(props: Partial<Parameters<typeof AnnotatorTable>[0]> = {}) {
  const onExclude = vi.fn(async () => {});
  const onRestore = vi.fn(async () => {});
  render(<AnnotatorTable annotators={annotators} exclusions={new Map()} onExclude={onExclude} onRestore={onRestore} {...props} />);
  return { onExclude, onRestore, table: screen.getByRole("table", { name: "Annotators" }) };
}

function usernames(table: HTMLElement): string[] {
  return within(table)
    .getAllByRole("row")
    .slice(1)
    .map((row) => within(row).getByRole("rowheader").firstChild?.textContent ?? "");
}

function header(table: HTMLElement, name: string): HTMLElement {
  return within(table).getByRole("columnheader", { name: new RegExp(`^${name}`) });
}

function row(table: HTMLElement, username: string): HTMLElement {
  return within(table).getByRole("rowheader", { name: new RegExp(`^${username}`) }).closest("tr")!;
}

describe("AnnotatorTable", () => {
  it("sorts by consensus agreement, ascending then descending, with missing values last", async () => {
    const u = userEvent.setup();
    const { table } = renderTable();
    expect(usernames(table)).toEqual(["alice", "bob", "carol", "dave"]);
    expect(table.querySelectorAll("th[aria-sort]")).toHaveLength(0);

    await u.click(within(table).getByRole("button", { name: "Consensus agreement" }));
    expect(usernames(table)).toEqual(["bob", "carol", "alice", "dave"]);
    expect(header(table, "Consensus agreement").getAttribute("aria-sort")).toBe("ascending");

    await u.click(within(table).getByRole("button", { name: "Consensus agreement" }));
    expect(usernames(table)).toEqual(["alice", "carol", "bob", "dave"]);
    expect(header(table, "Consensus agreement").getAttribute("aria-sort")).toBe("descending");

    await u.click(within(table).getByRole("button", { name: "Username" }));
    expect(header(table, "Username").getAttribute("aria-sort")).toBe("ascending");
    expect(header(table, "Consensus agreement").getAttribute("aria-sort")).toBeNull();
    expect(table.querySelectorAll("th[aria-sort]")).toHaveLength(1);
  });

  it("sorts every numeric column", () => {
    const rows = [annotator(1, "a", { median_seconds: 9 }), annotator(2, "b", { median_seconds: 2 }), annotator(3, "c", { median_seconds: null })];
    const names = (key: Parameters<typeof sortAnnotators>[1]) => sortAnnotators(rows, key).map((r) => r.username);
    expect(names({ key: "median_seconds", direction: "ascending" })).toEqual(["b", "a", "c"]);
    expect(names({ key: "median_seconds", direction: "descending" })).toEqual(["a", "b", "c"]);
    expect(names({ key: "username", direction: "descending" })).toEqual(["c", "b", "a"]);
    expect(names(null)).toEqual(["a", "b", "c"]);
  });

  it("highlights flagged rows and shows a label per flag", () => {
    const { table } = renderTable();
    const bob = row(table, "bob");
    expect(bob.className).toContain("annotator-flagged");
    const flags = within(bob).getAllByRole("listitem").map((li) => li.textContent);
    expect(flags).toEqual(["Low gold accuracy", "Low agreement", "Too fast"]);
    expect(bob.querySelectorAll("td.cell-flagged")).toHaveLength(3);

    const carol = row(table, "carol");
    expect(carol.className).toContain("annotator-flagged");
    expect(within(carol).getByText("Position bias")).toBeTruthy();
    expect(within(carol).getByText("< 0.001")).toBeTruthy();

    const alice = row(table, "alice");
    expect(alice.className).not.toContain("annotator-flagged");
    expect(within(alice).queryByRole("listitem")).toBeNull();
    // dave has no consensus/gold numbers: dashes, never NaN.
    expect(row(table, "dave").textContent).not.toContain("NaN");
  });

  it("shows the thresholds legend", () => {
    render(<ThresholdLegend thresholds={qualityData.thresholds} />);
    expect(screen.getByText("gold accuracy below 70%")).toBeTruthy();
    expect(screen.getByText("consensus agreement below 50%")).toBeTruthy();
    expect(screen.getByText("median time under 5.0 s")).toBeTruthy();
    expect(screen.getByText("left-share binomial test p below 0.01")).toBeTruthy();
  });

  it("asks for a reason before excluding, and shows the server's error", async () => {
    const u = userEvent.setup();
    const onExclude = vi.fn(async () => {
      throw new ApiError(409, "conflict", "bob is already excluded.");
    });
    const { table } = renderTable({ onExclude });

    await u.click(within(row(table, "bob")).getByRole("button", { name: "Exclude" }));
    const form = screen.getByRole("form", { name: "Exclude bob" });
    const confirm = within(form).getByRole("button", { name: "Confirm exclusion" }) as HTMLButtonElement;
    expect(confirm.disabled).toBe(true);
    await u.type(within(form).getByLabelText("Reason for excluding bob"), "  spam  ");
    await u.click(confirm);

    expect(onExclude).toHaveBeenCalledWith(expect.objectContaining({ annotator_id: 12 }), "spam");
    expect((await within(form).findByRole("alert")).textContent).toBe("bob is already excluded.");

    await u.click(within(form).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("form", { name: "Exclude bob" })).toBeNull();
  });

  it("marks excluded annotators and offers Restore with the active exclusion", async () => {
    const u = userEvent.setup();
    const active = exclusion(7, 13, "carol");
    const { table, onRestore } = renderTable({ exclusions: new Map([[13, active]]) });
    const carol = row(table, "carol");
    expect(carol.className).toContain("annotator-excluded");
    expect(within(carol).getByText("Excluded")).toBeTruthy();
    expect(within(carol).queryByRole("button", { name: "Exclude" })).toBeNull();

    await u.click(within(carol).getByRole("button", { name: "Restore" }));
    await u.type(screen.getByLabelText("Reason for restoring carol"), "Retrained");
    await u.click(screen.getByRole("button", { name: "Confirm restore" }));

    expect(onRestore).toHaveBeenCalledWith(active, "Retrained");
    expect(screen.queryByRole("form", { name: "Restore carol" })).toBeNull();
    expect(screen.getByRole("status").textContent).toMatch(/carol is restored/);
  });

  it("falls back to the statistics' excluded flag while the exclusions are unknown", () => {
    const rows = [annotator(1, "erin", { excluded: true })];
    const { table } = renderTable({ annotators: rows, exclusions: null });
    expect(within(row(table, "erin")).getByText("Excluded")).toBeTruthy();
    expect((within(table).getByRole("button", { name: "Restore" }) as HTMLButtonElement).disabled).toBe(true);
  });
});
