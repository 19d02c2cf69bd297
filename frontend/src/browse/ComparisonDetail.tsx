import { useCallback } from "react";
import { Link } from "react-router-dom";
import { ConversationView } from "../annotate/ConversationView";
import { ResponsePane } from "../annotate/ResponsePane";
import { Loading, LoadError } from "../components/LoadStatus";
import { useLoad } from "../console/useLoad";
import { browseApi } from "./browseApi";
import { annotatorPath } from "./BrowseTables";
import { choiceLabel, percent, seconds, strengthLabel, when } from "./format";
import type { ComparisonHistory } from "./types";

/** One comparison: prompt, both responses side by side, votes, every judgment and lease. */
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
      {c.judgments.length === 0 ? (
        <p className="muted">No judgments yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="table" aria-label="Judgment history">
            <thead>
              <tr>
                <th>Annotator</th>
                <th>Choice</th>
                <th>Strength</th>
                <th>Rationale</th>
                <th className="numeric">Time taken</th>
                <th>Shown</th>
                <th>When</th>
              </tr>
            </thead>
            <tbody>
              {c.judgments.map((j) => (
                <tr key={j.id}>
                  <td>
                    <Link to={annotatorPath(projectId, j.annotator.id)}>{j.annotator.username}</Link>
                    {j.annotator_excluded && <span className="badge badge-excluded"> excluded</span>}
                  </td>
                  <td>{choiceLabel(j.choice)}</td>
                  <td>{strengthLabel(j.strength)}</td>
                  <td>{j.rationale || <span className="muted">—</span>}</td>
                  <td className="numeric">{seconds(j.time_taken_ms)}</td>
                  <td>{j.swapped ? "B left" : "A left"}</td>
                  <td>{when(j.created_at)}</td>
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
