import type { BatchQuality } from "../api";
import { formatAlpha, formatAlphaValue, formatCount, formatPercent } from "./format";

/** Agreement and coverage per batch of comparisons. */
export function BatchTable({ batches }: { batches: BatchQuality[] }) {
  if (batches.length === 0) return <p className="muted">No batches yet.</p>;
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Batches">
        <thead>
          <tr>
            <th scope="col">Batch</th>
            <th scope="col" className="numeric">
              Judgments
            </th>
            <th scope="col" className="numeric">
              Coverage
            </th>
            <th scope="col">α nominal [95% CI]</th>
            <th scope="col">α ordinal</th>
            <th scope="col" className="numeric">
              % agreement
            </th>
          </tr>
        </thead>
        <tbody>
          {batches.map((batch) => (
            <tr key={batch.batch_id}>
              <th scope="row">{batch.name || `Batch ${batch.batch_id}`}</th>
              <td className="numeric">{formatCount(batch.judgments)}</td>
              <td className="numeric" title={`${formatCount(batch.comparisons)} comparisons`}>
                {formatPercent(batch.coverage)}
              </td>
              <td className={batch.alpha_nominal.value === null ? "muted" : undefined}>{formatAlpha(batch.alpha_nominal)}</td>
              <td
                className={batch.alpha_ordinal.value === null ? "muted" : undefined}
                title={`95% CI: ${formatAlpha(batch.alpha_ordinal)}`}
              >
                {formatAlphaValue(batch.alpha_ordinal)}
              </td>
              <td className="numeric">{formatPercent(batch.percent_agreement)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
