import type { Exclusion } from "../api";
import { formatDateTime } from "./format";

function When({ iso }: { iso: string }) {
  return <time dateTime={iso}>{formatDateTime(iso)}</time>;
}

/** The audit trail of exclusions, newest first: who excluded whom, when and why, and any restore. */
export function ExclusionLog({ exclusions }: { exclusions: Exclusion[] }) {
  if (exclusions.length === 0) return <p className="muted">No annotator has been excluded.</p>;
  return (
    <ol className="exclusion-log" aria-label="Exclusion audit trail">
      {exclusions.map((exclusion) => (
        <li key={exclusion.id} className={exclusion.active ? "exclusion exclusion-active" : "exclusion exclusion-revoked"}>
          <p className="exclusion-line">
            <span className={exclusion.active ? "badge badge-excluded" : "badge badge-none"}>
              {exclusion.active ? "Active" : "Restored"}
            </span>{" "}
            <strong>{exclusion.created_by}</strong> excluded <strong>{exclusion.username}</strong> on{" "}
            <When iso={exclusion.created_at} />
          </p>
          <p className="exclusion-reason">Reason: {exclusion.reason || <span className="muted">none given</span>}</p>
          {exclusion.revoked_at && (
            <>
              <p className="exclusion-line">
                <strong>{exclusion.revoked_by ?? "Someone"}</strong> restored <strong>{exclusion.username}</strong> on{" "}
                <When iso={exclusion.revoked_at} />
              </p>
              <p className="exclusion-reason">
                Reason: {exclusion.revoke_reason || <span className="muted">none given</span>}
              </p>
            </>
          )}
        </li>
      ))}
    </ol>
  );
}
