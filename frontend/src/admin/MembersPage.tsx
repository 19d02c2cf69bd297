import { useCallback, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";
import { roleLabel, type Role } from "../api";
import { useApiErrorHandler } from "../auth";
import { Loading, LoadError } from "../components/LoadStatus";
import { isForbidden, useLoad } from "../console/useLoad";
import { formatDateTime } from "../quality/format";
import { InvitesPanel } from "./InvitesPanel";
import { adminApi, ROLES, type Member } from "./types";
import "./admin.css";

function RoleSelect({ value, onChange, label, disabled }: { value: Role; onChange(r: Role): void; label: string; disabled?: boolean }) {
  return (
    <select aria-label={label} value={value} disabled={disabled} onChange={(e) => onChange(e.target.value as Role)}>
      {ROLES.map((r) => (
        <option key={r.value} value={r.value}>
          {r.label}
        </option>
      ))}
    </select>
  );
}

type Mode = "existing" | "new";

function AddMemberForm({ projectId, onAdded }: { projectId: number; onAdded(m: Member): void }) {
  const handleError = useApiErrorHandler();
  const [mode, setMode] = useState<Mode>("existing");
  const [user, setUser] = useState("");
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("annotator");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body =
        mode === "existing"
          ? { role, user: user.trim() }
          : { role, username: username.trim(), password, ...(email.trim() ? { email: email.trim() } : {}) };
      const added = await adminApi.addMember(projectId, body);
      onAdded(added);
      setUser("");
      setUsername("");
      setEmail("");
      setPassword("");
    } catch (err) {
      setError(handleError(err).message);
    } finally {
      setBusy(false);
    }
  }

  const ready = mode === "existing" ? user.trim() !== "" : username.trim() !== "" && password !== "";
  return (
    <form className="card admin-form" onSubmit={onSubmit} aria-label="Add a member">
      <h2>Add a member</h2>
      <div className="admin-inline" role="radiogroup" aria-label="Who">
        <label className="admin-check">
          <input type="radio" name="mode" checked={mode === "existing"} onChange={() => setMode("existing")} /> Existing
          user
        </label>
        <label className="admin-check">
          <input type="radio" name="mode" checked={mode === "new"} onChange={() => setMode("new")} /> New account
        </label>
      </div>
      <div className="admin-inline">
        {mode === "existing" ? (
          <label>
            Username or email
            <input value={user} autoComplete="off" onChange={(e) => setUser(e.target.value)} />
          </label>
        ) : (
          <>
            <label>
              Username
              <input value={username} autoComplete="off" onChange={(e) => setUsername(e.target.value)} />
            </label>
            <label>
              Email (optional)
              <input type="email" value={email} autoComplete="off" onChange={(e) => setEmail(e.target.value)} />
            </label>
            <label>
              Password
              <input
                type="password"
                value={password}
                autoComplete="new-password"
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
          </>
        )}
        <label>
          Role
          <RoleSelect label="Role" value={role} onChange={setRole} />
        </label>
        <button type="submit" className="button" disabled={busy || !ready}>
          {busy ? "Adding…" : "Add member"}
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function MemberRow({
  projectId,
  member,
  onChanged,
  onRemoved,
  onError,
}: {
  projectId: number;
  member: Member;
  onChanged(m: Member): void;
  onRemoved(userId: number): void;
  onError(message: string): void;
}) {
  const handleError = useApiErrorHandler();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);

  async function act(action: () => Promise<void>) {
    setBusy(true);
    try {
      await action();
    } catch (err) {
      onError(handleError(err).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <tr>
      <th scope="row">
        {member.username}
        {member.email && <div className="muted">{member.email}</div>}
      </th>
      <td>
        <RoleSelect
          label={`Role of ${member.username}`}
          value={member.role}
          disabled={busy}
          onChange={(role) => void act(async () => onChanged(await adminApi.changeRole(projectId, member.user_id, role)))}
        />
      </td>
      <td>{formatDateTime(member.joined_at)}</td>
      <td>{member.judgment_count}</td>
      <td>{member.last_judgment_at ? formatDateTime(member.last_judgment_at) : <span className="muted">—</span>}</td>
      <td className="actions">
        {confirming ? (
          <span className="admin-confirm">
            <button
              type="button"
              className="button button-small"
              disabled={busy}
              onClick={() =>
                void act(async () => {
                  await adminApi.removeMember(projectId, member.user_id);
                  onRemoved(member.user_id);
                })
              }
            >
              Confirm removal
            </button>
            <button type="button" className="link-button" onClick={() => setConfirming(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <button
            type="button"
            className="button button-secondary button-small"
            aria-label={`Remove ${member.username}`}
            onClick={() => setConfirming(true)}
          >
            Remove
          </button>
        )}
      </td>
    </tr>
  );
}

/** /projects/:id/members — members with their activity, adding, roles, removal; invite links. */
export function MembersPage({ projectId }: { projectId: number }) {
  const load = useCallback((signal: AbortSignal) => adminApi.members(projectId, signal), [projectId]);
  const { state, reload, update } = useLoad(load);
  const [error, setError] = useState<string | null>(null);

  let content;
  if (state.status === "loading") content = <Loading what="members" />;
  else if (state.status === "error" && (isForbidden(state.error) || state.error.status === 404))
    content = (
      <p className="error" role="alert">
        Only the project’s admins can manage its members.
      </p>
    );
  else if (state.status === "error") content = <LoadError message={state.error.message} onRetry={reload} />;
  else {
    const members = state.data;
    content = (
      <>
        <div className="table-wrap">
          <table className="table" aria-label="Members">
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                <th scope="col">Judgments</th>
                <th scope="col">Last judgment</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {members.map((member) => (
                <MemberRow
                  key={member.user_id}
                  projectId={projectId}
                  member={member}
                  onError={setError}
                  onChanged={(m) => {
                    setError(null);
                    update((rows) => rows.map((r) => (r.user_id === m.user_id ? m : r)));
                  }}
                  onRemoved={(userId) => {
                    setError(null);
                    update((rows) => rows.filter((r) => r.user_id !== userId));
                  }}
                />
              ))}
            </tbody>
          </table>
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <AddMemberForm
          projectId={projectId}
          onAdded={(m) => update((rows) => [...rows, m].sort((a, b) => a.username.localeCompare(b.username)))}
        />
        <InvitesPanel projectId={projectId} />
      </>
    );
  }

  return (
    <main className="page">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}`}>← Project</Link>
      </p>
      <h1>Members</h1>
      <p className="muted">
        Roles: {ROLES.map((r) => roleLabel(r.value)).join(", ")}. A project always keeps at least one project admin.
      </p>
      {content}
    </main>
  );
}
