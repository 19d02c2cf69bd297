import { Link } from "react-router-dom";
import { choiceLabel, percent, seconds, strengthLabel, when } from "./format";
import type { ComparisonRow, JudgmentRow, PromptRow } from "./types";

export function annotatorPath(projectId: number, userId: number): string {
  return `/projects/${projectId}/annotators/${userId}`;
}

function Empty({ columns }: { columns: number }) {
  return (
    <tr>
      <td colSpan={columns} className="muted">
        Nothing matches these filters.
      </td>
    </tr>
  );
}

/** Untrusted text shown as plain text (React escapes it), cut to one line by CSS. */
function Preview({ text }: { text: string }) {
  return <span title={text}>{text.length > 120 ? `${text.slice(0, 120)}…` : text}</span>;
}

export function PromptTable({
  rows,
  onShowComparisons,
}: {
  rows: PromptRow[];
  onShowComparisons: (promptId: number) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Prompts">
        <thead>
          <tr>
            <th>Id</th>
            <th>External id</th>
            <th>Prompt</th>
            <th>Batch</th>
            <th className="numeric">Comparisons</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && <Empty columns={6} />}
          {rows.map((row) => (
            <tr key={row.id}>
              <td>{row.id}</td>
              <td>{row.external_id}</td>
              <td>
                <Preview text={row.preview} />
                {row.turns > 1 && <span className="muted"> ({row.turns} turns)</span>}
              </td>
              <td>{row.batch ? row.batch.name : "—"}</td>
              <td className="numeric">
                <button type="button" className="link-button" onClick={() => onShowComparisons(row.id)}>
                  {row.comparisons}
                </button>
              </td>
              <td>{when(row.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ComparisonTable({ rows, onOpen }: { rows: ComparisonRow[]; onOpen: (id: number) => void }) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Comparisons">
        <thead>
          <tr>
            <th>Id</th>
            <th>Prompt</th>
            <th>Response A</th>
            <th>Response B</th>
            <th className="numeric">Judgments</th>
            <th>Consensus</th>
            <th className="numeric">Agreement</th>
            <th>Gold</th>
            <th>Batch</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && <Empty columns={10} />}
          {rows.map((row) => (
            <tr key={row.id}>
              <td>
                <button type="button" className="link-button" onClick={() => onOpen(row.id)}>
                  {row.id}
                </button>
              </td>
              <td>
                <Preview text={row.prompt.preview} />
              </td>
              <td>
                <Preview text={row.response_a.preview} />
              </td>
              <td>
                <Preview text={row.response_b.preview} />
              </td>
              <td className="numeric">
                {row.judgment_count} / {row.gold ? "—" : row.target_votes}
              </td>
              <td>{choiceLabel(row.consensus)}</td>
              <td className="numeric">{percent(row.agreement)}</td>
              <td>{row.gold ? `gold: ${choiceLabel(row.gold_choice)}` : "—"}</td>
              <td>{row.batch.name}</td>
              <td>{row.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function JudgmentTable({
  projectId,
  rows,
  onOpen,
}: {
  projectId: number;
  rows: JudgmentRow[];
  onOpen: (comparisonId: number) => void;
}) {
  return (
    <div className="table-wrap">
      <table className="table" aria-label="Judgments">
        <thead>
          <tr>
            <th>Id</th>
            <th>Annotator</th>
            <th>Comparison</th>
            <th>Prompt</th>
            <th>Choice</th>
            <th>Strength</th>
            <th className="numeric">Time</th>
            <th>When</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && <Empty columns={8} />}
          {rows.map((row) => (
            <tr key={row.id}>
              <td>{row.id}</td>
              <td>
                <Link to={annotatorPath(projectId, row.annotator.id)}>{row.annotator.username}</Link>
              </td>
              <td>
                <button type="button" className="link-button" onClick={() => onOpen(row.comparison_id)}>
                  {row.comparison_id}
                </button>
                {row.gold && <span className="badge"> gold</span>}
              </td>
              <td>{row.prompt.external_id}</td>
              <td>{choiceLabel(row.choice)}</td>
              <td>{strengthLabel(row.strength)}</td>
              <td className="numeric">{seconds(row.time_taken_ms)}</td>
              <td>{when(row.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
