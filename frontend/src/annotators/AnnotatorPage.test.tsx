import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { ProjectDetail } from "../api";
import { mockFetch, type MockRoute } from "../test/mockFetch";
import { exclusion, report } from "../test/qualityFixture";
import { renderApp } from "../test/renderApp";
import { formatDeviation } from "./AnnotatorPage";
import type { AnnotatorReport } from "./types";

const admin = { id: 1, username: "root", is_superuser: false, roles: ["project_admin"] };
const PAGE = "GET /api/projects/3/annotators/12/?days=30";

const project: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "",
  instructions: "",
  role: "project_admin",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: true,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0.05,
  created_at: "2025-01-02T10:00:00Z",
};

function days(): AnnotatorReport["throughput"]["per_day"] {
  return Array.from({ length: 30 }, (_, i) => {
    const day = new Date(Date.UTC(2026, 9, 27 + i)).toISOString().slice(0, 10);
    return { day, judgments: day === "2026-11-23" ? 2 : day === "2026-11-16" ? 1 : 0, median_seconds: null };
  });
}

const data: AnnotatorReport = {
  annotator: { id: 12, username: "bob", role: "annotator", excluded: true },
  throughput: { days: 30, per_day: days(), judgments_total: 5, judgments_in_range: 3, median_seconds: 5 },
  agreement_weeks: [
    {
      week: "2026-11-16",
      judgments: 2,
      consensus_agreement: 0.5,
      consensus_judgments: 2,
      pairwise_agreement: 0.5,
      pairs: 4,
      gold_correct: 0,
      gold_total: 0,
    },
    {
      week: "2026-11-23",
      judgments: 3,
      consensus_agreement: null,
      consensus_judgments: 0,
      pairwise_agreement: 0.25,
      pairs: 4,
      gold_correct: 1,
      gold_total: 2,
    },
  ],
  gold: { correct: 1, total: 2, accuracy: 0.5 },
  position_bias: {
    decided: 5,
    left: 3,
    right: 2,
    left_share: 0.6,
    deviation: 0.1,
    p_value: 1,
    ci_low: 0.1466,
    ci_high: 0.9473,
    method: "two-sided exact binomial test of the left share against 0.5",
  },
  recent: [
    {
      judgment_id: 901,
      comparison_id: 77,
      prompt_external_id: "p7",
      choice: "A",
      display_choice: "right",
      strength: 3,
      time_taken_ms: 6000,
      created_at: "2026-11-23T10:00:00Z",
      is_gold: false,
      gold_correct: null,
      agrees_with_consensus: false,
    },
    {
      judgment_id: 900,
      comparison_id: 76,
      prompt_external_id: "g1",
      choice: "B",
      display_choice: "left",
      strength: null,
      time_taken_ms: null,
      created_at: "2026-11-22T10:00:00Z",
      is_gold: true,
      gold_correct: true,
      agrees_with_consensus: null,
    },
  ],
  exclusions: [exclusion(4, 12, "bob", { reason: "clicks at random" })],
};

function routes(page: MockRoute) {
  return { "GET /api/auth/me/": { body: admin }, "GET /api/projects/3/": { body: project }, [PAGE]: page };
}

describe("AnnotatorPage", () => {
  it("shows the summary, charts, position bias, recent judgments and exclusions", async () => {
    mockFetch(routes({ body: data }));
    renderApp("/projects/3/annotators/12");

    expect(await screen.findByRole("heading", { level: 1, name: /bob/ })).toBeTruthy();
    expect(screen.getByText("Excluded")).toBeTruthy();
    const cards = screen.getAllByRole("definition").map((d) => d.textContent);
    expect(cards).toContain("5"); // judgments in all
    expect(cards).toContain("3 in the last 30 days");
    expect(cards).toContain("5.0 s");
    expect(cards).toContain("1 of 2 gold items");

    const agreement = screen.getByRole("img", { name: "Agreement by week" });
    // consensus has a value in one week, the pairs in both
    expect(agreement.querySelectorAll("circle.alpha-point-nominal")).toHaveLength(1);
    expect(agreement.querySelectorAll("circle.alpha-point-ordinal")).toHaveLength(2);
    const throughput = screen.getByRole("img", { name: "Throughput" });
    expect(throughput.querySelectorAll("rect.throughput-bar").length).toBeGreaterThanOrEqual(8);

    const weeks = screen.getByRole("table", { name: "Agreement by week" });
    const secondWeek = within(weeks).getByRole("row", { name: /2026-11-23/ });
    expect(secondWeek.textContent).toContain("25%");
    expect(secondWeek.textContent).toContain("1 / 2");

    const bias = screen.getByTestId("position-bias");
    expect(bias.textContent).toContain("60%");
    expect(bias.textContent).toContain("3 left, 2 right");
    expect(bias.textContent).toContain("+10.0 pts from 50%");
    expect(bias.textContent).toContain("95% CI 14.7%–94.7%");
    expect(bias.textContent).toContain("binomial test");

    const recent = screen.getByRole("table", { name: "Recent judgments" });
    const rows = within(recent).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-judgment-id"))).toEqual(["901", "900"]);
    expect(rows[0]!.textContent).toContain("disagrees");
    expect(rows[0]!.textContent).toContain("6.0 s");
    expect(rows[1]!.textContent).toContain("gold: correct");

    expect(screen.getByText(/clicks at random/)).toBeTruthy();
  });

  it("tells a non-admin that the page is for project admins", async () => {
    mockFetch(routes({ status: 403, body: { code: "permission_denied", message: "no", extra: {} } }));
    renderApp("/projects/3/annotators/12");
    expect(await screen.findByText("You need to be a project admin to see this page.")).toBeTruthy();
  });

  it("says so when the user is not an annotator of this project", async () => {
    mockFetch(routes({ status: 404, body: { code: "annotator_not_found", message: "No such annotator", extra: {} } }));
    renderApp("/projects/3/annotators/12");
    expect(await screen.findByText("No such annotator in this project.")).toBeTruthy();
  });

  it("is reached from the quality dashboard's annotator table", async () => {
    const { calls } = mockFetch({
      ...routes({ body: data }),
      "GET /api/projects/3/quality/": { body: report() },
      "GET /api/projects/3/exclusions/": { body: { results: [] } },
    });
    const u = userEvent.setup();
    renderApp("/projects/3/quality");
    await u.click(await screen.findByRole("link", { name: "bob" }));
    expect(await screen.findByRole("heading", { level: 1, name: /bob/ })).toBeTruthy();
    await waitFor(() => expect(calls.some((c) => `${c.method} ${c.path}` === PAGE)).toBe(true));
  });

  it("formats the deviation from one half in percentage points", () => {
    expect(formatDeviation(0.1)).toBe("+10.0 pts");
    expect(formatDeviation(-0.025)).toBe("−2.5 pts");
    expect(formatDeviation(0)).toBe("±0.0 pts");
    expect(formatDeviation(null)).toBe("—");
  });
});
