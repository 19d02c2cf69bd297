import { useCallback, useRef, useState, type FormEvent } from "react";
import { roleLabel, type Role } from "../api";
import { useApiErrorHandler } from "../auth";
import { Loading, LoadError } from "../components/LoadStatus";
import { useLoad } from "../console/useLoad";
import { formatDateTime } from "../quality/format";
import { adminApi, ROLES, type CreatedInvite, type Invite } from "./types";

const LIFETIMES: { hours: number; label: string }[] = [
  { hours: 24, label: "1 day" },
  { hours: 72, label: "3 days" },
  { hours: 168, label: "7 days" },
  { hours: 720, label: "30 days" },
];

const STATE_LABELS: Record<Invite["state"], string> = {
  active: "Active",
  used: "Used",
  expired: "Expired",
  revoked: "Revoked",
};

/** The link of an invite just made: its token is shown this once. */
function NewInviteLink({ invite }: { invite: CreatedInvite }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<"idle" | "copied" | "failed">("idle");
  const url = `${window.location.origin}${invite.path}`;

  async function copy() {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(url);
      setCopied("copied");
    } catch {
      setCopied("failed");
      input.current?.select();
    }
  }

  return (
    <div className="notice-warning">
      <p>
        <strong>Invite link for one {roleLabel(invite.role).toLowerCase()}</strong> — copy it now, it is shown only
        once. It expires {formatDateTime(invite.expires_at)}.
      </p>
      <div className="admin-invite-link">
        <input ref={input} readOnly aria-label="Invite link" value={url} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="button button-small" onClick={() => void copy()}>
          {copied === "copied" ? "Copied" : "Copy link"}
        </button>
      </div>
      <p role="status" className="muted">
        {copied === "copied" && "Copied to the clipboard."}
        {copied === "failed" && "Could not copy automatically: select the link and copy it by hand."}
      </p>
    </div>
  );
}

export function InvitesPanel({ projectId }: { projectId: number }) {
  const handleError = useApiErrorHandler();
  const load = useCallback((signal: AbortSignal) => adminApi.invites(projectId, signal), [projectId]);
  const { state, reload, update } = useLoad(load);
  const [role, setRole] = useState<Role>("annotator");
  const [hours, setHours] = useState(168);
  const [created, setCreated] = useState<CreatedInvite | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onCreate(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const invite = await adminApi.createInvite(projectId, role, hours);
      setCreated(invite);
      update((rows) => [invite, ...rows]);
    } catch (err) {
      setError(handleError(err).message);
    } finally {
      setBusy(false);
    }
  }

  async function revoke(invite: Invite) {
    setError(null);
    try {
      await adminApi.revokeInvite(projectId, invite.id);
      const now = new Date().toISOString();
      update((rows) => rows.map((r) => (r.id === invite.id ? { ...r, state: "revoked", revoked_at: now } : r)));
    } catch (err) {
      setError(handleError(err).message);
    }
  }

  return (
    <section className="card" aria-labelledby="invites-title">
      <h2 id="invites-title">Invite links</h2>
      <p className="muted">A link lets one person join with the role you choose: they sign in, or create an account.</p>
      <form className="admin-inline" onSubmit={onCreate} aria-label="Create an invite link">
        <label>
          Role
          <select aria-label="Invite role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Expires after
          <select aria-label="Expires after" value={hours} onChange={(e) => setHours(Number(e.target.value))}>
            {LIFETIMES.map((l) => (
              <option key={l.hours} value={l.hours}>
                {l.label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" className="button" disabled={busy}>
          {busy ? "Creating…" : "Create invite link"}
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {created && <NewInviteLink invite={created} />}
      {state.status === "loading" && <Loading what="invites" />}
      {state.status === "error" && <LoadError message={state.error.message} onRetry={reload} />}
      {state.status === "loaded" && state.data.length === 0 && <p className="empty">No invite links yet.</p>}
      {state.status === "loaded" && state.data.length > 0 && (
        <div className="table-wrap">
          <table className="table" aria-label="Invite links">
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {state.data.map((invite) => (
                <tr key={invite.id}>
                  <td>{roleLabel(invite.role)}</td>
                  <td>
                    {formatDateTime(invite.created_at)}
                    {invite.created_by && <span className="muted"> by {invite.created_by}</span>}
                  </td>
                  <td>{formatDateTime(invite.expires_at)}</td>
                  <td>
                    <span className="badge">{STATE_LABELS[invite.state]}</span>
                    {invite.used_by && <span className="muted"> by {invite.used_by}</span>}
                  </td>
                  <td className="actions">
                    {invite.state === "active" && (
                      <button
                        type="button"
                        className="button button-secondary button-small"
                        aria-label={`Revoke invite ${invite.id}`}
                        onClick={() => void revoke(invite)}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
