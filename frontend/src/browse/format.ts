import type { CanonicalChoice } from "./types";

export const CHOICE_LABELS: Record<CanonicalChoice, string> = {
  A: "A",
  B: "B",
  tie: "Tie",
  both_bad: "Both bad",
};

export const STRENGTH_LABELS: Record<number, string> = {
  1: "negligibly",
  2: "slightly",
  3: "better",
  4: "significantly",
};

export function choiceLabel(choice: string | null): string {
  if (choice === null) return "—";
  return CHOICE_LABELS[choice as CanonicalChoice] ?? choice;
}

export function strengthLabel(strength: number | null): string {
  return strength === null ? "—" : (STRENGTH_LABELS[strength] ?? String(strength));
}

export function percent(share: number | null): string {
  return share === null ? "—" : `${Math.round(share * 100)}%`;
}

export function seconds(ms: number | null): string {
  return ms === null ? "—" : `${(ms / 1000).toFixed(1)} s`;
}

export function when(iso: string | null): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toISOString().slice(0, 16).replace("T", " ");
}
