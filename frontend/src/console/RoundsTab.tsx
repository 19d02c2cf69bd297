import { useCallback, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { consoleHref, LoadError, Loading, StatusBadge, useSelection } from "./common";
import { consoleApi } from "./consoleApi";
import { formatWhen, formatWinRate } from "./format";
import { RoundDetail } from "./RoundDetail";
import { StartRoundForm } from "./StartRoundForm";
import { STEP_TITLES } from "./StepTimeline";
import type { Round } from "./types";
import { isForbidden, POLL_INTERVAL_MS, useLoad } from "./useLoad";

function RoundTable({ rounds, selectedId }: { rounds: Round[]; selectedId: number | null }) {
  return (
    <div className="table-wrap">
      <table className="table table-compact console-table" aria-label="Rounds">
        <thead>
          <tr>
            <th scope="col">Round</th>
            <th scope="col">Status</th>
            <th scope="col">Current step</th>
            <th scope="col">Win rate [95% CI]</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {rounds.map((round) => {
            const selected = round.id === selectedId;
            return (
              <tr key={round.id} className={selected ? "row-selected" : undefined} data-testid={`round-row-${round.id}`}>
                <th scope="row">
                  <Link to={consoleHref("round", round.id)} aria-current={selected ? "true" : undefined}>
                    Round {round.number}
                  </Link>
                </th>
                <td>
                  <StatusBadge status={round.status} />
                </td>
                <td>{STEP_TITLES[round.step] ?? round.step}</td>
                <td className={round.win_rate?.win_rate == null ? "muted" : undefined}>{formatWinRate(round.win_rate)}</td>
                <td>{formatWhen(round.created_at)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The RLHF rounds of the project, the selected one in detail, and "Start a round". */
export function RoundsTab({ projectId, pollIntervalMs = POLL_INTERVAL_MS }: { projectId: number; pollIntervalMs?: number }) {
  const [selected, select] = useSelection("round");
  const [formOpen, setFormOpen] = useState(false);
  const load = useCallback((signal: AbortSignal) => consoleApi.rounds(projectId, signal), [projectId]);
  const { state, reload, update } = useLoad(load);
  // Other roles are told the console is not theirs, with nothing to start.
  const forbidden = state.status === "error" && isForbidden(state.error);

  const rounds = useMemo(
    () => (state.status === "loaded" ? [...state.data].sort((a, b) => b.number - a.number || b.id - a.id) : []),
    [state],
  );
  // Without a selection, the newest round.
  const selectedId = selected ?? rounds[0]?.id ?? null;
  const initial = rounds.find((r) => r.id === selectedId);

  const onChange = useCallback(
    (round: Round) => update((list) => (list.some((r) => r.id === round.id) ? list.map((r) => (r.id === round.id ? round : r)) : [round, ...list])),
    [update],
  );

  const onStarted = useCallback(
    (round: Round) => {
      onChange(round);
      setFormOpen(false);
      select(round.id);
    },
    [onChange, select],
  );

  return (
    <div className="console-tab rounds-tab">
      <div className="console-toolbar">
        <p className="muted console-toolbar-text">
          Each round turns the feedback since the previous one into a new policy and publishes its candidates for
          judgment.
        </p>
        {!formOpen && !forbidden && (
          <button type="button" className="button" onClick={() => setFormOpen(true)}>
            Start a round
          </button>
        )}
      </div>
      {formOpen && <StartRoundForm projectId={projectId} onStarted={onStarted} onClose={() => setFormOpen(false)} />}

      {state.status === "loading" && <Loading>Loading rounds…</Loading>}
      {state.status === "error" && <LoadError error={state.error} onRetry={reload} />}
      {state.status === "loaded" && rounds.length === 0 && (
        <div className="empty">
          <p>No rounds yet</p>
          <p className="muted">Start a round once annotators have judged some comparisons.</p>
        </div>
      )}
      {state.status === "loaded" && rounds.length > 0 && <RoundTable rounds={rounds} selectedId={selectedId} />}

      {selectedId !== null && state.status !== "error" && (
        <RoundDetail
          key={selectedId}
          projectId={projectId}
          roundId={selectedId}
          initial={initial}
          onChange={onChange}
          pollIntervalMs={pollIntervalMs}
        />
      )}
    </div>
  );
}
