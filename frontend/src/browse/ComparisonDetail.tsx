import { useCallback } from "react";
import { Link } from "react-router-dom";
import { ConversationView } from "../annotate/ConversationView";
import { ResponsePane } from "../annotate/ResponsePane";
import { Loading, LoadError } from "../components/LoadStatus";
import { useLoad } from "../console/useLoad";
import { browseApi } from "./browseApi";
import { annotatorPath } from "./BrowseTables";
import { choiceLabel, percent, seconds, strengthLabel, when } from "./format";
import type { CanonicalChoice, ComparisonHistory, UserRef } from "./types";

/** One comparison: prompt, both responses side by side, votes, every judgment (undone ones
 * marked) and lease. */
export function ComparisonDetail({ projectId, comparisonId }: { projectId: number; comparisonId: number }) {
  const load = useCallback(
    (signal: AbortSignal) => browseApi.comparison(projectId, comparisonId, signal),
    [projectId, comparisonId],
  );
  const { state, reload } = useLoad(load);
  if (state.status === "loading") return <Loading what="comparison" />;
  if (state.status === "error") {
    if (state.error.status === 404) {
      return (
        <div className="card">
          <p role="alert">No comparison {comparisonId} in this project.</p>
        </div>
      );
    }
    return <LoadError message={state.error.message} onRetry={reload} />;
  }
  return <History projectId={projectId} c={state.data} />;
}

function History({ projectId, c }: { projectId: number; c: ComparisonHistory }) {
  const consensus = c.consensus;
  return (
    <article className="card comparison-history" aria-label={`Comparison ${c.id}`}>
      <h2>Comparison {c.id}</h2>
      <p className="muted">
        Prompt {c.prompt.external_id} · {c.batch.name} · {c.status}
        {c.gold && ` · gold answer ${choiceLabel(c.gold_choice)}`} · {c.judgment_count} judgment
        {c.judgment_count === 1 ? "" : "s"}, {c.lease_count} live lease{c.lease_count === 1 ? "" : "s"}
      </p>
      <p data-testid="votes">
        Consensus <strong>{choiceLabel(consensus)}</strong> · agreement <strong>{percent(c.agreement)}</strong> ·
        votes A {c.tally.A}, B {c.tally.B}, tie {c.tally.tie}, both bad {c.tally.both_bad}
      </p>
      <ConversationView messages={c.prompt.messages} />
      <div className="responses">
        <ResponsePane label="Response A" content={c.response_a.content} chosen={consensus === "A"} />
        <ResponsePane label="Response B" content={c.response_b.content} chosen={consensus === "B"} />
      </div>

      <h3>Judgments</h3>
      {c.judgments.length === 0 && c.revisions.length === 0 ? (
        <p className="muted">No judgments yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Judgment history">
            <thead>
              <tr>
                <th className="numeric">#</th>
                <th>Annotator</th>
                <th>Choice</th>
                <th>Strength</th>
                <th>Rationale</th>
                <th className="numeric">Time taken</th>
                <th>Shown</th>
                <th>When</th>
                <th>Undone</th>
              </tr>
            </thead>
            <tbody>
              {judgmentRows(c).map((j) => (
                <tr key={`${j.undo ? "r" : "j"}${j.key}`} className={j.undo ? "undone" : undefined}>
                  <td className="numeric">{j.judgmentId}</td>
                  <td>
                    <Link to={annotatorPath(projectId, j.annotator.id)}>{j.annotator.username}</Link>
                    {j.annotatorExcluded && <span className="badge badge-excluded"> excluded</span>}
                    {j.undo && <span className="badge badge-undone"> undone</span>}
                  </td>
                  <td>{choiceLabel(j.choice)}</td>
                  <td>{strengthLabel(j.strength)}</td>
                  <td>{j.rationale || <span className="muted">—</span>}</td>
                  <td className="numeric">{seconds(j.timeTakenMs)}</td>
                  <td>{j.swapped ? "B left" : "A left"}</td>
                  <td>{when(j.judgedAt)}</td>
                  <td>
                    {j.undo ? (
                      <>
                        {when(j.undo.at)} by {j.undo.by.username} ·{" "}
                        {j.undo.replacedBy === null ? "not judged again" : `replaced by #${j.undo.replacedBy}`}
                      </>
                    ) : (
                      <span className="muted">—</span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h3>Leases</h3>
      {c.leases.length === 0 ? (
        <p className="muted">Never leased.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Lease history">
            <thead>
              <tr>
                <th>Annotator</th>
                <th>Status</th>
                <th>Leased</th>
                <th>Closed</th>
                <th>Skip reason</th>
              </tr>
            </thead>
            <tbody>
              {c.leases.map((a) => (
                <tr key={a.id}>
                  <td>
                    <Link to={annotatorPath(projectId, a.annotator.id)}>{a.annotator.username}</Link>
                  </td>
                  <td>{a.status}</td>
                  <td>{when(a.created_at)}</td>
                  <td>{when(a.closed_at)}</td>
                  <td>{a.skip_reason || <span className="muted">—</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </article>
  );
}

interface JudgmentLine {
  key: number;
  judgmentId: number;
  annotator: UserRef;
  annotatorExcluded: boolean;
  choice: CanonicalChoice;
  strength: number | null;
  rationale: string;
  timeTakenMs: number | null;
  swapped: boolean;
  judgedAt: string;
  /** Set on an undone judgment: when, by whom, and the judgment that replaced it. */
  undo: { at: string; by: UserRef; replacedBy: number | null } | null;
}

/** Current and undone judgments in one history, in the order they were submitted. */
function judgmentRows(c: ComparisonHistory): JudgmentLine[] {
  const current: JudgmentLine[] = c.judgments.map((j) => ({
    key: j.id,
    judgmentId: j.id,
    annotator: j.annotator,
    annotatorExcluded: j.annotator_excluded,
    choice: j.choice,
    strength: j.strength,
    rationale: j.rationale,
    timeTakenMs: j.time_taken_ms,
    swapped: j.swapped,
    judgedAt: j.created_at,
    undo: null,
  }));
  const undone: JudgmentLine[] = c.revisions.map((r) => ({
    key: r.id,
    judgmentId: r.judgment_id,
    annotator: r.annotator,
    annotatorExcluded: r.annotator_excluded,
    choice: r.choice,
    strength: r.strength,
    rationale: r.rationale,
    timeTakenMs: r.time_taken_ms,
    swapped: r.swapped,
    judgedAt: r.judged_at,
    undo: { at: r.undone_at, by: r.undone_by, replacedBy: r.resubmitted_judgment_id },
  }));
  // judgment ids grow with submit time: a tie-break for equal timestamps
  return [...current, ...undone].sort(
    (x, y) => Date.parse(x.judgedAt) - Date.parse(y.judgedAt) || x.judgmentId - y.judgmentId,
  );
}
