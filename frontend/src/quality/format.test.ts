import { describe, expect, it } from "vitest";
import { alpha } from "../test/qualityFixture";
import {
  fillDays,
  flagLabel,
  formatAlpha,
  formatAlphaValue,
  formatFixed,
  formatPValue,
  formatPercent,
  formatRelativeTime,
  formatSeconds,
  kappaColor,
  KAPPA_NULL_COLOR,
  niceTicks,
} from "./format";

describe("quality formatting", () => {
  it("formats alpha with its CI, and says 'not enough data' instead of NaN", () => {
    expect(formatAlpha(alpha(0.62, 0.58, 0.66))).toBe("0.62 [0.58, 0.66]");
    expect(formatAlpha(alpha(-0.004, -0.1, 0.09))).toBe("0.00 [-0.10, 0.09]");
    expect(formatAlpha(alpha(0.5))).toBe("0.50");
    expect(formatAlpha(alpha(null))).toBe("not enough data");
    expect(formatAlpha({ value: Number.NaN, low: null, high: null, units: 0, reason: null })).toBe("not enough data");
    expect(formatAlphaValue(alpha(0.713, 0.6, 0.8))).toBe("0.71");
    expect(formatAlphaValue(alpha(null))).toBe("not enough data");
    expect(formatFixed(Number.NaN)).toBe("—");
  });

  it("formats shares, seconds and p-values", () => {
    expect(formatPercent(0.824)).toBe("82.4%");
    expect(formatPercent(0.62)).toBe("62%");
    expect(formatPercent(1)).toBe("100%");
    expect(formatPercent(null)).toBe("—");
    expect(formatSeconds(3.24)).toBe("3.2 s");
    expect(formatSeconds(14.6)).toBe("15 s");
    expect(formatSeconds(150)).toBe("2.5 min");
    expect(formatSeconds(null)).toBe("—");
    expect(formatPValue(0.0004)).toBe("< 0.001");
    expect(formatPValue(0.04213)).toBe("0.042");
    expect(formatPValue(0.01)).toBe("0.01");
    expect(formatPValue(null)).toBe("—");
  });

  it("formats relative times", () => {
    const now = Date.parse("2025-03-27T12:00:00Z");
    expect(formatRelativeTime("2025-03-27T11:59:50Z", now)).toBe("just now");
    expect(formatRelativeTime("2025-03-27T11:55:00Z", now)).toBe("5 minutes ago");
    expect(formatRelativeTime("2025-03-27T09:00:00Z", now)).toBe("3 hours ago");
    expect(formatRelativeTime("2025-03-26T12:00:00Z", now)).toBe("yesterday");
    expect(formatRelativeTime("nonsense", now)).toBe("at an unknown time");
  });

  it("labels flags", () => {
    expect(["low_gold_accuracy", "low_consensus_agreement", "too_fast", "position_bias"].map(flagLabel)).toEqual([
      "Low gold accuracy",
      "Low agreement",
      "Too fast",
      "Position bias",
    ]);
    expect(flagLabel("new_flag")).toBe("new flag");
  });

  it("colours kappa on a diverging scale, grey for null", () => {
    expect(kappaColor(-1)).toBe("rgb(178, 24, 43)");
    expect(kappaColor(0)).toBe("rgb(247, 247, 247)");
    expect(kappaColor(1)).toBe("rgb(33, 102, 172)");
    expect(kappaColor(5)).toBe(kappaColor(1));
    expect(kappaColor(0.25)).toBe("rgb(175, 208, 227)");
    expect(kappaColor(null)).toBe(KAPPA_NULL_COLOR);
    expect(kappaColor(Number.NaN)).toBe(KAPPA_NULL_COLOR);
  });

  it("fills missing days with zero and picks nice ticks", () => {
    expect(
      fillDays([
        { day: "2025-03-31", judgments: 2 },
        { day: "2025-03-29", judgments: 5 },
      ]),
    ).toEqual([
      { day: "2025-03-29", judgments: 5 },
      { day: "2025-03-30", judgments: 0 },
      { day: "2025-03-31", judgments: 2 },
    ]);
    expect(fillDays([])).toEqual([]);
    expect(niceTicks(75, 4, true)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(3, 4, true)).toEqual([0, 1, 2, 3]);
    expect(niceTicks(0, 4, true)).toEqual([0, 1]);
  });
});
