import type { Alpha, AnnotatorQuality, Exclusion, QualityData, QualityReport, WeekQuality } from "../api";

export function alpha(value: number | null, low: number | null = null, high: number | null = null, units = 40): Alpha {
  return value === null
    ? { value: null, low: null, high: null, units, reason: "not_enough_data" }
    : { value, low, high, units, reason: null };
}

export function week(day: string, nominal: Alpha, ordinal: Alpha = nominal, judgments = 30): WeekQuality {
  return { week: day, judgments, alpha_nominal: nominal, alpha_ordinal: ordinal, percent_agreement: 0.7 };
}

export function annotator(id: number, username: string, extra: Partial<AnnotatorQuality> = {}): AnnotatorQuality {
  return {
    annotator_id: id,
    username,
    judgments: 50,
    consensus_agreement: 0.8,
    gold_accuracy: 0.9,
    gold_judgments: 10,
    left_share: 0.5,
    position_p_value: 0.6,
    median_seconds: 20,
    excluded: false,
    flags: [],
    ...extra,
  };
}

export const annotators: AnnotatorQuality[] = [
  annotator(11, "alice", { judgments: 120, consensus_agreement: 0.82 }),
  annotator(12, "bob", {
    judgments: 80,
    consensus_agreement: 0.41,
    gold_accuracy: 0.55,
    median_seconds: 3.2,
    flags: ["low_gold_accuracy", "low_consensus_agreement", "too_fast"],
  }),
  annotator(13, "carol", { judgments: 95, consensus_agreement: 0.67, left_share: 0.71, position_p_value: 0.0004, flags: ["position_bias"] }),
  annotator(14, "dave", { judgments: 4, consensus_agreement: null, gold_accuracy: null, gold_judgments: 0 }),
];

export const qualityData: QualityData = {
  summary: {
    judgments: 1234,
    comparisons: 500,
    comparisons_complete: 412,
    coverage: 0.824,
    annotators: 4,
    alpha_nominal: alpha(0.62, 0.58, 0.66, 400),
    alpha_ordinal: alpha(0.71, 0.674, 0.748, 380),
    percent_agreement: 0.745,
    gold_accuracy: 0.88,
    gold_judgments: 60,
    median_seconds: 14.6,
  },
  batches: [
    {
      batch_id: 1,
      name: "Import 1",
      judgments: 900,
      comparisons: 300,
      coverage: 1,
      alpha_nominal: alpha(0.6, 0.55, 0.65),
      alpha_ordinal: alpha(0.7, 0.66, 0.74),
      percent_agreement: 0.74,
    },
    {
      batch_id: 2,
      name: "Round 2",
      judgments: 334,
      comparisons: 200,
      coverage: 0.56,
      alpha_nominal: alpha(null),
      alpha_ordinal: alpha(null),
      percent_agreement: null,
    },
  ],
  weeks: [
    week("2025-03-03", alpha(0.55, 0.5, 0.6), alpha(0.65, 0.6, 0.7)),
    week("2025-03-10", alpha(0.6, 0.54, 0.66), alpha(0.7, 0.64, 0.75)),
    week("2025-03-17", alpha(null), alpha(null), 2),
    week("2025-03-24", alpha(0.64, 0.6, 0.69), alpha(0.72, 0.68, 0.77)),
  ],
  annotators,
  kappa: {
    annotators: [
      { id: 11, username: "alice" },
      { id: 12, username: "bob" },
      { id: 13, username: "carol" },
    ],
    matrix: [
      [1, 0.55, 0.7],
      [0.55, 1, null],
      [0.7, null, 1],
    ],
    common: [
      [120, 40, 60],
      [40, 80, 3],
      [60, 3, 95],
    ],
  },
  throughput: [
    { day: "2025-03-24", judgments: 40 },
    { day: "2025-03-25", judgments: 75 },
    { day: "2025-03-27", judgments: 12 },
  ],
  thresholds: {
    min_gold_accuracy: 0.7,
    min_consensus_agreement: 0.5,
    min_median_seconds: 5,
    max_position_p_value: 0.01,
  },
};

export function report(extra: Partial<QualityReport> = {}): QualityReport {
  return {
    computed_at: new Date(Date.now() - 5 * 60_000).toISOString(),
    stale: false,
    new_judgments: 0,
    undone_judgments: 0,
    data: qualityData,
    ...extra,
  };
}

export function exclusion(id: number, annotatorId: number, username: string, extra: Partial<Exclusion> = {}): Exclusion {
  return {
    id,
    annotator_id: annotatorId,
    username,
    reason: "Random clicking",
    created_by: "admin",
    created_at: "2025-03-20T10:00:00Z",
    revoked_at: null,
    revoked_by: null,
    revoke_reason: "",
    active: true,
    ...extra,
  };
}
