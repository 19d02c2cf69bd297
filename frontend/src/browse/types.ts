// Shapes of the data browser's API (annotation/browse_selectors.py), written by hand.

import type { ChatMessage } from "../api";

export type BrowseTab = "prompts" | "comparisons" | "judgments";
export type CanonicalChoice = "A" | "B" | "tie" | "both_bad";
export type ComparisonStatus = "open" | "complete" | "gold";

export interface Ref {
  id: number;
  name: string;
}

export interface UserRef {
  id: number;
  username: string;
}

/** One keyset page: `next_cursor` is null on the last page. */
export interface BrowsePage<T> {
  results: T[];
  next_cursor: string | null;
  limit: number;
}

export interface PromptRow {
  id: number;
  external_id: string;
  preview: string;
  turns: number;
  created_at: string;
  comparisons: number;
  batch: Ref | null;
}

export interface Tally {
  A: number;
  B: number;
  tie: number;
  both_bad: number;
}

export interface Votes {
  votes: number;
  /** null without a unique top choice (no votes, or a tie between choices). */
  consensus: CanonicalChoice | null;
  /** The top choice's share of the votes, 0…1; null without votes. */
  agreement: number | null;
  tally: Tally;
}

export interface ComparisonRow extends Votes {
  id: number;
  batch: Ref;
  prompt: { id: number; external_id: string; preview: string };
  response_a: { id: number; preview: string };
  response_b: { id: number; preview: string };
  gold: boolean;
  gold_choice: CanonicalChoice | null;
  status: ComparisonStatus;
  target_votes: number;
  judgment_count: number;
  lease_count: number;
  created_at: string;
}

export interface JudgmentRow {
  id: number;
  annotator: UserRef;
  comparison_id: number;
  prompt: { id: number; external_id: string };
  batch: Ref;
  choice: CanonicalChoice;
  strength: number | null;
  time_taken_ms: number | null;
  swapped: boolean;
  created_at: string;
  gold: boolean;
  gold_choice: CanonicalChoice | null;
}

export interface ResponseDetail {
  id: number;
  content: string;
  source: string;
  model_artifact_id: number | null;
  round_number: number | null;
  metadata: Record<string, unknown>;
}

export interface HistoryJudgment {
  id: number;
  annotator: UserRef;
  annotator_excluded: boolean;
  assignment_id: number;
  choice: CanonicalChoice;
  strength: number | null;
  rationale: string;
  time_taken_ms: number | null;
  swapped: boolean;
  created_at: string;
}

/** An undone judgment (a revision): the answer as it was, who took it back when, and the
 * judgment that replaced it (null until the annotator judged the item again). */
export interface HistoryRevision {
  id: number;
  /** The id the undone judgment had. */
  judgment_id: number;
  annotator: UserRef;
  annotator_excluded: boolean;
  assignment_id: number;
  choice: CanonicalChoice;
  strength: number | null;
  rationale: string;
  time_taken_ms: number | null;
  swapped: boolean;
  judged_at: string;
  undone_at: string;
  undone_by: UserRef;
  resubmitted_judgment_id: number | null;
}

export interface HistoryLease {
  id: number;
  annotator: UserRef;
  status: "active" | "submitted" | "skipped" | "expired";
  swapped: boolean;
  created_at: string;
  expires_at: string;
  closed_at: string | null;
  skip_reason: string;
}

export interface ComparisonHistory extends Votes {
  id: number;
  batch: Ref;
  prompt: { id: number; external_id: string; messages: ChatMessage[]; metadata: Record<string, unknown> };
  response_a: ResponseDetail;
  response_b: ResponseDetail;
  gold: boolean;
  gold_choice: CanonicalChoice | null;
  status: ComparisonStatus;
  target_votes: number;
  judgment_count: number;
  lease_count: number;
  created_at: string;
  judgments: HistoryJudgment[];
  leases: HistoryLease[];
  /** Undone judgments, oldest first. */
  revisions: HistoryRevision[];
}

/** Filter values as typed in the form ("" = not filtered). */
export type Filters = Record<string, string>;
