import { useCallback, useEffect, useRef, useState } from "react";
import type { ApiError } from "../api";
import { useApiErrorHandler } from "../auth";
import { isActiveStatus, LoadError, Loading, ObjectLink, StatusBadge } from "./common";
import { consoleApi } from "./consoleApi";
import { formatWhen } from "./format";
import { GatePanel } from "./GatePanel";
import { StepTimeline } from "./StepTimeline";
import type { Round } from "./types";
import { POLL_INTERVAL_MS, usePolled } from "./useLoad";
import { WinRatePanel } from "./WinRatePanel";

const isRoundActive = (round: Round) => isActiveStatus(round.status);

export interface RoundDetailProps {
  projectId: number;
  roundId: number;
  /** The list's copy, shown until the round itself has loaded. */
  initial?: Round;
  /** Called with every fresh copy (to keep the list in step). */
  onChange?(round: Round): void;
  pollIntervalMs?: number;
}

/**
 * One round: its step timeline, win rate and actions. Polls the round every 2 s while it
 * is queued or running (key it by round id).
 */
export function RoundDetail({ projectId, roundId, initial, onChange, pollIntervalMs = POLL_INTERVAL_MS }: RoundDetailProps) {
  const handleError = useApiErrorHandler();
  const load = useCallback((signal: AbortSignal) => consoleApi.round(projectId, roundId, signal), [projectId, roundId]);
  const { state, reload, update } = usePolled(load, isRoundActive, pollIntervalMs);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<ApiError | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    if (state.status === "loaded") changed.current?.(state.data);
  }, [state]);

  const round = state.status === "loaded" ? state.data : initial;

  async function act(action: "cancel" | "retry" | "override", reason = "") {
    setBusy(true);
    setActionError(null);
    try {
      const fresh =
        action === "cancel"
          ? await consoleApi.cancelRound(projectId, roundId)
          : action === "retry"
            ? await consoleApi.retryRound(projectId, roundId)
            : await consoleApi.overrideRound(projectId, roundId, reason);
      update(() => fresh);
      if (isRoundActive(fresh)) reload(); // poll again until it finishes
    } catch (err) {
      setActionError(handleError(err));
      reload();
    } finally {
      setBusy(false);
    }
  }

  if (!round) {
    if (state.status === "error") return <LoadError error={state.error} onRetry={reload} />;
    return <Loading>Loading round…</Loading>;
  }

  const active = isRoundActive(round);
  return (
    <article className="card console-detail round-detail" aria-labelledby={`round-${round.id}-title`} data-testid="round-detail">
      <header className="console-detail-header">
        <div>
          <h2 id={`round-${round.id}-title`} className="console-detail-title">
            Round {round.number}
          </h2>
          <p className="muted console-detail-meta">
            <StatusBadge status={round.status} /> · {round.config?.algorithm?.toUpperCase() ?? "—"}
            {round.config?.accumulate ? " · accumulated feedback" : ""} · base policy{" "}
            <ObjectLink kind="model" id={round.base_policy_id} /> · created {formatWhen(round.created_at)}
            {round.finished_at && ` · finished ${formatWhen(round.finished_at)}`}
          </p>
        </div>
        <div className="console-actions">
          {active && (
            <button type="button" className="button button-secondary" onClick={() => void act("cancel")} disabled={busy}>
              Cancel round
            </button>
          )}
          {round.status === "failed" && (
            <button type="button" className="button" onClick={() => void act("retry")} disabled={busy}>
              Retry round
            </button>
          )}
        </div>
      </header>
      {active && (
        <p className="muted polling-note" role="status">
          Updating every {Math.round(pollIntervalMs / 1000)} s while the round is {round.status}…
        </p>
      )}
      {actionError && (
        <p className="error" role="alert">
          {actionError.message}
        </p>
      )}
      {round.status === "failed" && round.error && (
        <p className="error round-error" data-testid="round-error">
          {round.error}
        </p>
      )}
      <GatePanel round={round} busy={busy} onOverride={(reason) => void act("override", reason)} />
      <section className="console-subsection" aria-labelledby={`round-${round.id}-winrate`}>
        <h3 id={`round-${round.id}-winrate`} className="section-title">
          Win rate of the new policy
        </h3>
        <WinRatePanel rate={round.win_rate} />
      </section>
      <section className="console-subsection" aria-labelledby={`round-${round.id}-steps`}>
        <h3 id={`round-${round.id}-steps`} className="section-title">
          Steps
        </h3>
        <StepTimeline round={round} />
      </section>
    </article>
  );
}
