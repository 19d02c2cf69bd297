import { useCallback, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, roleLabel } from "../api";
import { useAuth } from "../auth";
import { Loading } from "../components/LoadStatus";
import { useLoad } from "../console/useLoad";
import { formatDateTime } from "../quality/format";
import { fieldErrors } from "./fieldErrors";
import { adminApi, type InviteInfo } from "./types";
import "./admin.css";

const WHY_NOT: Record<NonNullable<InviteInfo["reason"]>, string> = {
  used: "This invite link was already used.",
  expired: "This invite link has expired. Ask the project’s admin for a new one.",
  revoked: "This invite link was revoked by the project’s admin.",
  archived: "This project is archived and takes no new members.",
};

function AcceptForm({ token, info }: { token: string; info: InviteInfo }) {
  const { state, refresh } = useAuth();
  const navigate = useNavigate();
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signedIn = state.status === "authenticated";

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setMessage(null);
    try {
      if (!signedIn) await api.csrf();
      const joined = await adminApi.acceptInvite(
        token,
        signedIn ? {} : { username: username.trim(), password, ...(email.trim() ? { email: email.trim() } : {}) },
      );
      refresh();
      navigate(`/projects/${joined.project_id}`);
    } catch (err) {
      setErrors(fieldErrors(err));
      setMessage(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  }

  if (state.status === "loading") return <Loading what="your session" />;
  return (
    <form className="admin-form" onSubmit={onSubmit} aria-label="Accept the invite" noValidate>
      {signedIn ? (
        <p>
          You are signed in as <strong>{state.user.username}</strong>.
        </p>
      ) : (
        <>
          <p>
            Create your account to join, or{" "}
            <Link to="/login" state={{ from: `/invites/${token}` }}>
              sign in
            </Link>{" "}
            if you already have one.
          </p>
          <div className="admin-field">
            <label htmlFor="invite-username">Username</label>
            <input
              id="invite-username"
              value={username}
              autoComplete="username"
              onChange={(e) => setUsername(e.target.value)}
            />
            {errors.username && <p className="error field-error">{errors.username}</p>}
          </div>
          <div className="admin-field">
            <label htmlFor="invite-email">Email (optional)</label>
            <input
              id="invite-email"
              type="email"
              value={email}
              autoComplete="email"
              onChange={(e) => setEmail(e.target.value)}
            />
            {errors.email && <p className="error field-error">{errors.email}</p>}
          </div>
          <div className="admin-field">
            <label htmlFor="invite-password">Password</label>
            <input
              id="invite-password"
              type="password"
              value={password}
              autoComplete="new-password"
              onChange={(e) => setPassword(e.target.value)}
            />
            {errors.password && <p className="error field-error">{errors.password}</p>}
          </div>
        </>
      )}
      {message && (
        <p className="error" role="alert">
          {message}
        </p>
      )}
      <button
        type="submit"
        className="button"
        disabled={busy || (!signedIn && (!username.trim() || !password))}
        aria-busy={busy}
      >
        {busy ? "Joining…" : signedIn ? `Join ${info.project.name}` : "Create account and join"}
      </button>
    </form>
  );
}

/** /invites/:token — open to anyone holding the link. */
export function InviteAcceptPage({ token }: { token: string }) {
  const load = useCallback((signal: AbortSignal) => adminApi.invite(token, signal), [token]);
  const { state } = useLoad(load);

  let content;
  if (state.status === "loading") content = <Loading what="invite" />;
  else if (state.status === "error")
    content = (
      <>
        <h1>Invite</h1>
        <p className="error" role="alert">
          {state.error.status === 404 ? "This invite link is not valid. Check that you copied all of it." : state.error.message}
        </p>
      </>
    );
  else {
    const info = state.data;
    content = (
      <>
        <h1>Join {info.project.name}</h1>
        <p>
          You are invited as <span className="badge">{roleLabel(info.role)}</span>
          {info.valid && <span className="muted"> — the link expires {formatDateTime(info.expires_at)}</span>}
        </p>
        {info.valid ? (
          <AcceptForm token={token} info={info} />
        ) : (
          <p className="error" role="alert">
            {info.reason ? WHY_NOT[info.reason] : "This invite link can no longer be used."}
          </p>
        )}
      </>
    );
  }

  return (
    <main className="page page-narrow">
      <div className="card">{content}</div>
    </main>
  );
}
