import type { Choice, LabelScheme, Strength, SubmitBody } from "../api";

/** The annotator's answer for one item, as it is being put together. */
export interface Answer {
  choice: Choice | null;
  strength: Strength | null;
  rationale: string;
}

export const EMPTY_ANSWER: Answer = { choice: null, strength: null, rationale: "" };

export interface ChoiceOption {
  value: Choice;
  label: string;
  /** Keys as KeyboardEvent.key (letters lower-case). */
  keys: string[];
  /** What the button shows. */
  hint: string;
  /** The label where the responses are tabs, not left and right (phones). */
  numberedLabel: string;
}

export const CHOICE_OPTIONS: ChoiceOption[] = [
  { value: "left", label: "Left is better", numberedLabel: "Response 1 is better", keys: ["1", "ArrowLeft"], hint: "1 / ←" },
  { value: "right", label: "Right is better", numberedLabel: "Response 2 is better", keys: ["2", "ArrowRight"], hint: "2 / →" },
  { value: "tie", label: "Tie", numberedLabel: "Tie", keys: ["t"], hint: "T" },
  { value: "both_bad", label: "Both bad", numberedLabel: "Both bad", keys: ["b"], hint: "B" },
];

export interface StrengthOption {
  value: Strength;
  label: string;
  key: string;
}

export const STRENGTH_OPTIONS: StrengthOption[] = [
  { value: 4, label: "Significantly", key: "q" },
  { value: 3, label: "Better", key: "w" },
  { value: 2, label: "Slightly", key: "e" },
  { value: 1, label: "Negligibly", key: "r" },
];

export function choiceAllowed(scheme: LabelScheme, choice: Choice): boolean {
  if (choice === "tie") return scheme.allow_tie;
  if (choice === "both_bad") return scheme.allow_both_bad;
  return true;
}

/** Strength is asked for a left/right choice when the project uses the scale. */
export function needsStrength(scheme: LabelScheme, choice: Choice | null): boolean {
  return scheme.strength_scale && (choice === "left" || choice === "right");
}

/** What is still missing before the answer can be submitted (empty when complete). */
export function missingParts(scheme: LabelScheme, answer: Answer): string[] {
  const missing: string[] = [];
  if (!answer.choice || !choiceAllowed(scheme, answer.choice)) missing.push("a choice");
  else if (needsStrength(scheme, answer.choice) && answer.strength === null) missing.push("how much better");
  if (scheme.rationale_mode === "required" && !answer.rationale.trim()) missing.push("a rationale");
  return missing;
}

export function isComplete(scheme: LabelScheme, answer: Answer): boolean {
  return missingParts(scheme, answer).length === 0;
}

/** The submit body (minus time_taken_ms), or null while the answer is incomplete. */
export function toSubmitBody(scheme: LabelScheme, answer: Answer): Omit<SubmitBody, "time_taken_ms"> | null {
  if (!answer.choice || !isComplete(scheme, answer)) return null;
  return {
    choice: answer.choice,
    strength: needsStrength(scheme, answer.choice) ? answer.strength : null,
    rationale: scheme.rationale_mode === "off" ? "" : answer.rationale.trim(),
  };
}
