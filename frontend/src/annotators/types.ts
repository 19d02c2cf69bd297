// GET /api/projects/:id/annotators/:userId/ (annotation/api_annotators.py), typed by hand.

import type { Exclusion } from "../api";

export interface AnnotatorIdentity {
  id: number;
  username: string;
  /** The membership role, null when no longer a member (but has judged here). */
  role: string | null;
  excluded: boolean;
}

export interface AnnotatorDay {
  /** "YYYY-MM-DD" (UTC) */
  day: string;
  judgments: number;
  median_seconds: number | null;
}

export interface AnnotatorThroughput {
  days: number;
  per_day: AnnotatorDay[];
  judgments_total: number;
  judgments_in_range: number;
  median_seconds: number | null;
}

export interface AnnotatorWeek {
  /** Monday, "YYYY-MM-DD" */
  week: string;
  judgments: number;
  /** Share of judgments matching the others' majority (leave-one-out), null without any. */
  consensus_agreement: number | null;
  consensus_judgments: number;
  /** Share of agreeing (this annotator, other annotator) pairs. */
  pairwise_agreement: number | null;
  pairs: number;
  gold_correct: number;
  gold_total: number;
}

export interface PositionBias {
  decided: number;
  left: number;
  right: number;
  left_share: number | null;
  deviation: number | null;
  p_value: number | null;
  ci_low: number | null;
  ci_high: number | null;
  method: string;
}

export interface RecentJudgment {
  judgment_id: number;
  comparison_id: number;
  prompt_external_id: string;
  choice: string;
  display_choice: string;
  strength: number | null;
  time_taken_ms: number | null;
  created_at: string;
  is_gold: boolean;
  gold_correct: boolean | null;
  agrees_with_consensus: boolean | null;
}

export interface AnnotatorReport {
  annotator: AnnotatorIdentity;
  throughput: AnnotatorThroughput;
  agreement_weeks: AnnotatorWeek[];
  gold: { correct: number; total: number; accuracy: number | null };
  position_bias: PositionBias;
  recent: RecentJudgment[];
  exclusions: Exclusion[];
}
