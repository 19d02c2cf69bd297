import { describe, expect, it } from "vitest";
import { ApiError } from "../api";
import { fieldErrors, formatBytes, formatDuration, formatMetric, formatWinRate, humanize } from "./format";
import { metricDomain } from "./MetricChart";
import { appendRows, lastStep, metricSeries, pickMetricKeys, thin } from "./metrics";
import { parseJsonObject } from "./StartRoundForm";
import type { MetricRow } from "./types";

const row = (step: number, values: Record<string, unknown>): MetricRow => ({ step, values, created_at: "" });

describe("metrics", () => {
  it("picks numeric keys, reward/kl/loss/accuracy first, at most 8", () => {
    const rows = [
      row(1, { epoch: 0.1, "train/entropy": 2, "objective/kl": 0.1, "objective/rlhf_reward": 1, loss: 0.5 }),
      row(2, { eval_accuracy: 0.7, eval_loss: 0.4, accuracy: "n/a", grad_norm: 1, a: 1, b: 2, c: 3 }),
    ];
    expect(pickMetricKeys(rows)).toEqual([
      "objective/rlhf_reward",
      "objective/kl",
      "loss",
      "eval_loss",
      "eval_accuracy",
      "train/entropy",
      "a",
      "b",
    ]);
    expect(pickMetricKeys(rows, 3)).toEqual(["objective/rlhf_reward", "objective/kl", "loss"]);
    expect(pickMetricKeys([])).toEqual([]);
  });

  it("builds series by step, skipping rows without the key", () => {
    const rows = [row(3, { loss: 0.3 }), row(1, { loss: 0.9 }), row(2, { reward: 1 }), row(4, { loss: Number.NaN })];
    expect(metricSeries(rows, "loss")).toEqual([
      [1, 0.9],
      [3, 0.3],
    ]);
  });

  it("appends only rows after the last step held", () => {
    const held = [row(1, {}), row(2, {})];
    expect(lastStep(held)).toBe(2);
    expect(lastStep([])).toBeNull();
    const more = [row(2, { dup: 1 }), row(3, {})];
    expect(appendRows(held, more).map((r) => r.step)).toEqual([1, 2, 3]);
    expect(appendRows(held, [])).toBe(held);
    expect(appendRows([], more)).toEqual(more);
  });

  it("thins long series keeping the ends", () => {
    const points = Array.from({ length: 1000 }, (_, i) => i);
    const thinned = thin(points, 400);
    expect(thinned).toHaveLength(400);
    expect(thinned[0]).toBe(0);
    expect(thinned[399]).toBe(999);
    expect(thin([1, 2], 400)).toEqual([1, 2]);
  });

  it("pads the y domain, and gives a flat series some height", () => {
    expect(metricDomain([0, 10])).toEqual([-0.5, 10.5]);
    expect(metricDomain([2, 2])).toEqual([1.8, 2.2]);
    expect(metricDomain([0, 0])).toEqual([-1, 1]);
  });
});

describe("format", () => {
  it("formats bytes, metrics, durations and win rates", () => {
    expect(formatBytes(500)).toBe("500 B");
    expect(formatBytes(2048)).toBe("2.0 KB");
    expect(formatBytes(1536 * 1024 * 1024)).toBe("1.5 GB");
    expect(formatBytes(null)).toBe("—");
    expect(formatMetric(0.123456)).toBe("0.1235");
    expect(formatMetric(0.00001)).toBe("1.00e-5");
    expect(formatMetric(1200)).toBe("1,200");
    expect(formatMetric("x")).toBe("—");
    expect(formatDuration("2025-01-01T00:00:00Z", "2025-01-01T00:02:05Z")).toBe("2 min 5 s");
    expect(formatDuration("2025-01-01T00:00:00Z", null)).toBeNull();
    expect(formatWinRate({ n: 10, wins: 6, ties: 1, win_rate: 0.65, ci_low: 0.4, ci_high: 0.85, predicted: null })).toBe(
      "65% [40%, 85%]",
    );
    expect(formatWinRate({ n: 0, wins: 0, ties: 0, win_rate: null, ci_low: null, ci_high: null, predicted: 0.5 })).toBe("—");
    expect(formatWinRate(null)).toBe("—");
    expect(humanize("eval_accuracy")).toBe("Eval accuracy");
  });

  it("flattens field errors: strings, lists, nested objects and a wrapped config", () => {
    const error = new ApiError(400, "invalid", "Bad.", {
      fields: {
        base_policy: ["Not a policy."],
        export: { fields: { test_fraction: "must be a number between 0.0 and 0.9" } },
        config: { algorithm: "must be one of ppo, grpo, rloo, dpo" },
      },
    });
    expect(fieldErrors(error, ["config"])).toEqual({
      base_policy: ["Not a policy."],
      export: ["test_fraction: must be a number between 0.0 and 0.9"],
      algorithm: ["must be one of ppo, grpo, rloo, dpo"],
    });
    expect(fieldErrors(new ApiError(500, "x", "y"))).toEqual({});
    expect(fieldErrors(null)).toEqual({});
  });

  it("parses config JSON: objects only, empty means {}", () => {
    expect(parseJsonObject(' {"a": 1} ', "Policy config")).toEqual({ value: { a: 1 } });
    expect(parseJsonObject("", "Policy config")).toEqual({ value: {} });
    expect(parseJsonObject("null", "Policy config")).toEqual({ error: "Policy config must be a JSON object ({ … })." });
    const bad = parseJsonObject("{a:1}", "Policy config");
    expect("error" in bad && bad.error.startsWith("Policy config is not valid JSON:")).toBe(true);
  });
});
