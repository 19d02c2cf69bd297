import { useState } from "react";
import { humanize } from "./format";
import type { Round } from "./types";

/** One gate's verdict as a round's step records it. */
export interface GateVerdict {
  gate: string;
  value: number | null;
  threshold: number;
  passed: boolean;
  reason: string;
}

/** A recorded "publish anyway". */
export interface GateOverride {
  gates: string[];
  reason: string;
  by: string;
  at: string;
}

const GATE_TITLES: Record<string, string> = {
  test_split: "Test split too small",
  reward_accuracy: "Reward model near chance",
  policy_kl: "Policy too far from its start",
  length_collapse: "Responses collapsed in length",
  repetition: "Repetitive responses",
  distinct_2: "Responses all alike",
  broken_text: "Broken text in responses",
};

function list<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/** The gates that stopped the round's current step (empty when none did). */
export function stoppedGates(round: Round): GateVerdict[] {
  if (round.status !== "failed") return [];
  const step = round.steps.find((s) => s.name === round.step);
  return list<GateVerdict>(step?.detail?.gates);
}

/** Every recorded override of the round, with its step. */
export function gateOverrides(round: Round): { step: string; override: GateOverride }[] {
  return round.steps.flatMap((s) => list<GateOverride>(s.detail?.overrides).map((override) => ({ step: s.name, override })));
}

function shown(value: number | null): string {
  return value === null ? "none" : Number.isInteger(value) ? String(value) : value.toFixed(3);
}

export interface GatePanelProps {
  round: Round;
  busy: boolean;
  /** Publish anyway with this reason. */
  onOverride(reason: string): void;
}

/** Which gate stopped the round (value against threshold), and "Publish anyway" with a reason. */
export function GatePanel({ round, busy, onOverride }: GatePanelProps) {
  const [reason, setReason] = useState("");
  const gates = stoppedGates(round);
  const overrides = gateOverrides(round);
  if (gates.length === 0 && overrides.length === 0) return null;
  return (
    <section className="console-subsection gate-panel" aria-labelledby={`round-${round.id}-gates`} data-testid="gate-panel">
      <h3 id={`round-${round.id}-gates`} className="section-title">
        Gates
      </h3>
      {gates.length > 0 && (
        <>
          <p>Nothing was published: the round stopped before its {humanize(round.step)} step could go on.</p>
          <ul className="gate-list">
            {gates.map((g) => (
              <li key={g.gate} data-testid={`gate-${g.gate}`}>
                <strong>{GATE_TITLES[g.gate] ?? humanize(g.gate)}</strong> — measured {shown(g.value)}, threshold{" "}
                {shown(g.threshold)}. <span className="muted">{g.reason}</span>
              </li>
            ))}
          </ul>
          <form
            className="gate-override"
            onSubmit={(e) => {
              e.preventDefault();
              if (reason.trim()) onOverride(reason.trim());
            }}
          >
            <label htmlFor={`round-${round.id}-override-reason`}>Why may this round go on?</label>
            <textarea
              id={`round-${round.id}-override-reason`}
              value={reason}
              maxLength={2000}
              rows={2}
              onChange={(e) => setReason(e.target.value)}
            />
            <button type="submit" className="button button-danger" disabled={busy || !reason.trim()}>
              Publish anyway
            </button>
          </form>
        </>
      )}
      {overrides.length > 0 && (
        <ul className="gate-overrides muted" aria-label="Overridden gates">
          {overrides.map(({ step, override }) => (
            <li key={`${step}-${override.at}`}>
              {humanize(step)}: {override.gates.map((g) => GATE_TITLES[g] ?? humanize(g)).join(", ")} overridden by {override.by}: “
              {override.reason}”
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
