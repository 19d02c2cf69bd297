import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { alpha, qualityData, week } from "../test/qualityFixture";
import { AlphaChart, alphaDomain } from "./AlphaChart";
import { runs } from "./chart";
import { KappaHeatmap } from "./KappaHeatmap";
import { ThroughputChart } from "./ThroughputChart";

function titles(elements: NodeListOf<Element>): string[] {
  return Array.from(elements, (el) => el.querySelector("title")?.textContent ?? "");
}

describe("AlphaChart", () => {
  it("draws one point per week with a non-null alpha, a CI band and gaps for null weeks", () => {
    render(<AlphaChart weeks={qualityData.weeks} />);
    const svg = screen.getByRole("img", { name: "Agreement over time" });

    // 4 weeks, the third without alpha.
    const nominal = svg.querySelectorAll("circle.alpha-point-nominal");
    expect(nominal).toHaveLength(3);
    expect(svg.querySelectorAll("circle.alpha-point-ordinal")).toHaveLength(3);
    expect(titles(nominal)[0]).toBe("Week of 2025-03-03: α nominal = 0.55 [0.50, 0.60] (30 judgments)");

    // The gap splits each line in two pieces, and the band too.
    expect(svg.querySelectorAll("path.alpha-line-nominal")).toHaveLength(2);
    expect(svg.querySelectorAll("path.alpha-line-ordinal")).toHaveLength(2);
    const bands = svg.querySelectorAll("path.alpha-band");
    expect(bands).toHaveLength(2);
    for (const band of bands) expect(band.getAttribute("d")).toMatch(/^M[\d.]+ [\d.]+( L[\d.]+ [\d.]+)+ Z$/);
    // The band's upper edge (high) lies above the point (smaller y), the lower edge below it.
    const [first] = Array.from(nominal);
    const cy = Number(first!.getAttribute("cy"));
    const ys = bands[0]!.getAttribute("d")!.match(/[\d.]+ ([\d.]+)/g)!.map((p) => Number(p.split(" ")[1]));
    expect(Math.min(...ys)).toBeLessThan(cy);
    expect(Math.max(...ys)).toBeGreaterThan(cy);

    // The axis starts at 0 when nothing is negative.
    expect(alphaDomain(qualityData.weeks)).toEqual([0, 1]);
    expect(svg.textContent).not.toContain("-0.2");

    // Axis labels and legend.
    expect(svg.textContent).toContain("Krippendorff's α");
    expect(svg.textContent).toContain("3 Mar");
    expect(screen.getByText("α nominal")).toBeTruthy();
    expect(screen.getByText("α ordinal")).toBeTruthy();
    expect(screen.getByText("95% CI (nominal)")).toBeTruthy();
    expect(svg.innerHTML).not.toContain("NaN");
  });

  it("extends the axis below zero for negative alpha and never prints NaN", () => {
    const weeks = [week("2025-03-10", alpha(-0.3, -0.45, -0.1)), week("2025-03-03", alpha(null))];
    expect(alphaDomain(weeks)).toEqual([-0.6, 1]);
    render(<AlphaChart weeks={weeks} />);
    const svg = screen.getByRole("img", { name: "Agreement over time" });
    expect(svg.querySelectorAll("circle.alpha-point-nominal")).toHaveLength(1);
    expect(svg.querySelectorAll("path.alpha-band")).toHaveLength(1);
    expect(svg.textContent).toContain("-0.6");
    expect(svg.innerHTML).not.toContain("NaN");
  });

  it("says so when no week has enough data, and when there are no weeks", () => {
    const { unmount } = render(<AlphaChart weeks={[week("2025-03-03", alpha(null))]} />);
    expect(screen.getByText("Not enough data in any week to compute α yet.")).toBeTruthy();
    expect(screen.getByRole("img", { name: "Agreement over time" }).querySelectorAll("circle")).toHaveLength(0);
    unmount();
    render(<AlphaChart weeks={[]} />);
    expect(screen.getByText("No judgments yet.")).toBeTruthy();
  });

  it("splits a series into runs at the gaps", () => {
    const values = [1, null, 2, 3, null, null, 4];
    expect(runs(values.length, (i) => values[i] !== null)).toEqual([[0], [2, 3], [6]]);
    expect(runs(0, () => true)).toEqual([]);
  });
});

describe("ThroughputChart", () => {
  it("draws one bar per day, with empty days in between at zero", () => {
    render(<ThroughputChart days={qualityData.throughput} />);
    const svg = screen.getByRole("img", { name: "Throughput" });
    const bars = svg.querySelectorAll("rect.throughput-bar");
    expect(bars).toHaveLength(4); // 24, 25, 26 (none), 27 March
    expect(titles(bars)).toEqual([
      "2025-03-24: 40 judgments",
      "2025-03-25: 75 judgments",
      "2025-03-26: 0 judgments",
      "2025-03-27: 12 judgments",
    ]);
    const heights = Array.from(bars, (b) => Number(b.getAttribute("height")));
    expect(heights[1]).toBeGreaterThan(heights[0]!);
    expect(heights[2]).toBe(0);
    expect(svg.textContent).toContain("Judgments");
    expect(screen.getByText("127 judgments over 4 days")).toBeTruthy();
  });
});

describe("KappaHeatmap", () => {
  it("draws n × n cells titled with the pair, kappa and common comparisons", () => {
    render(<KappaHeatmap kappa={qualityData.kappa} />);
    const svg = screen.getByRole("img", { name: "Cohen's kappa heatmap" });
    const cells = svg.querySelectorAll("rect.kappa-cell");
    expect(cells).toHaveLength(9);
    const cellTitles = titles(cells);
    expect(cellTitles[1]).toBe("alice × bob: κ = 0.55 (n = 40)");
    expect(cellTitles[3]).toBe("bob × alice: κ = 0.55 (n = 40)");
    expect(cellTitles[5]).toBe("bob × carol: κ = not enough data (n = 3)");
    expect(cells[5]!.getAttribute("class")).toContain("kappa-cell-null");
    expect(cells[5]!.getAttribute("fill")).toBe("rgb(208, 212, 218)");
    expect(cells[0]!.getAttribute("fill")).toBe("rgb(33, 102, 172)");
    expect(cells[1]!.getAttribute("fill")).not.toBe(cells[2]!.getAttribute("fill"));
    expect(svg.textContent).toContain("carol");
  });

  it("handles a project without annotators", () => {
    render(<KappaHeatmap kappa={{ annotators: [], matrix: [], common: [] }} />);
    expect(screen.getByText("No annotators yet.")).toBeTruthy();
  });
});
