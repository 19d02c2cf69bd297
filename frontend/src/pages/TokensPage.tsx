import { Loading, LoadError } from "../components/LoadStatus";
import { Fragment, useId, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api, type ApiToken, type CreatedApiToken } from "../api";
import { useApiErrorHandler, useAuth } from "../auth";
import { formatDateTime } from "../quality/format";
import { useTokens } from "../useTokens";

const COLUMN_COUNT = 6;

function When({ iso, never = "Never" }: { iso: string | null; never?: string }) {
  if (!iso) return <span className="muted">{never}</span>;
  return <time dateTime={iso}>{formatDateTime(iso)}</time>;
}

function isExpired(token: ApiToken, now: number): boolean {
  if (!token.expires_at) return false;
  const expires = Date.parse(token.expires_at);
  return Number.isFinite(expires) && expires <= now;
}

type CopyState = "idle" | "copied" | "failed";

/** The full secret of a token just created: shown here once, never again. */
function NewTokenSecret({ token, onDone }: { token: CreatedApiToken; onDone(): void }) {
  const titleId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [copy, setCopy] = useState<CopyState>("idle");

  async function onCopy() {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(token.token);
      setCopy("copied");
    } catch {
      setCopy("failed");
      input.current?.select();
    }
  }

  return (
    <section className="notice-warning token-secret" aria-labelledby={titleId}>
      <h3 id={titleId} className="token-secret-title">
        Your new token “{token.name}”
      </h3>
      <p className="token-secret-warning">
        <strong>Copy it now: it will not be shown again.</strong> Once you leave or reload this page only its prefix is
        kept. If you lose it, revoke it and create a new one.
      </p>
      <div className="token-secret-row">
        <input
          ref={input}
          className="token-secret-value"
          aria-label="New token"
          readOnly
          value={token.token}
          spellCheck={false}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button type="button" className="button button-small" onClick={() => void onCopy()}>
          {copy === "copied" ? "Copied" : "Copy"}
        </button>
      </div>
      <p className="token-secret-status" role="status">
        {copy === "copied" && "Copied to the clipboard."}
        {copy === "failed" && "Could not copy automatically: select the token and copy it by hand."}
      </p>
      <button type="button" className="button button-secondary button-small" onClick={onDone}>
        Done, I have copied it
      </button>
    </section>
  );
}

function CreateTokenForm({ onCreated }: { onCreated(token: CreatedApiToken): void }) {
  const inputId = useId();
  const handleError = useApiErrorHandler();
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) {
      setError("Please give the token a name.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const created = await api.createToken(trimmed);
      setName("");
      onCreated(created);
    } catch (err) {
      setError(handleError(err).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="token-form" onSubmit={onSubmit} aria-label="Create a token">
      <label htmlFor={inputId}>Token name</label>
      <input
        id={inputId}
        value={name}
        placeholder="e.g. training pipeline"
        autoComplete="off"
        onChange={(e) => setName(e.target.value)}
      />
      <button type="submit" className="button" disabled={busy || !name.trim()} aria-busy={busy}>
        {busy ? "Creating…" : "Create token"}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

interface RevokeConfirmProps {
  token: ApiToken;
  onConfirm(): Promise<void>;
  onCancel(): void;
}

/** The inline "are you sure?" under a row. */
function RevokeConfirm({ token, onConfirm, onCancel }: RevokeConfirmProps) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  }

  return (
    <div className="confirm" role="group" aria-label={`Revoke ${token.name}`}>
      <p className="confirm-text">
        Revoke “{token.name}”? Anything that uses it stops working at once. This cannot be undone.
      </p>
      <div className="confirm-actions">
        <button
          type="button"
          className="button button-danger button-small"
          onClick={() => void confirm()}
          disabled={busy}
          aria-busy={busy}
        >
          {busy ? "Revoking…" : "Revoke token"}
        </button>
        <button type="button" className="button button-secondary button-small" onClick={onCancel} disabled={busy}>
          Cancel
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function TokenTable({
  tokens,
  onRevoke,
}: {
  tokens: ApiToken[];
  onRevoke(token: ApiToken): Promise<void>;
}) {
  const [confirming, setConfirming] = useState<number | null>(null);
  const now = Date.now();

  return (
    <div className="table-wrap">
      <table className="table token-table" aria-label="API tokens">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Token</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((token) => {
            const open = confirming === token.id;
            return (
              <Fragment key={token.id}>
                <tr data-token-id={token.id}>
                  <td className="token-name">{token.name}</td>
                  <td>
                    <code className="token-prefix" title="The first characters of the token">
                      {token.prefix}…
                    </code>
                  </td>
                  <td>
                    <When iso={token.created_at} never="—" />
                  </td>
                  <td>
                    <When iso={token.expires_at} />
                    {isExpired(token, now) && <span className="badge badge-none token-expired">Expired</span>}
                  </td>
                  <td>
                    <When iso={token.last_used_at} />
                  </td>
                  <td className="actions">
                    <button
                      type="button"
                      className="button button-secondary button-small"
                      aria-expanded={open}
                      aria-label={`Revoke ${token.name}`}
                      onClick={() => setConfirming(open ? null : token.id)}
                    >
                      Revoke
                    </button>
                  </td>
                </tr>
                {open && (
                  <tr className="confirm-row">
                    <td colSpan={COLUMN_COUNT}>
                      <RevokeConfirm
                        token={token}
                        onCancel={() => setConfirming(null)}
                        onConfirm={async () => {
                          await onRevoke(token);
                          setConfirming(null);
                        }}
                      />
                    </td>
                  </tr>
                )}
              </Fragment>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** "Log out everywhere": revokes every token and ends every session, then back to /login. */
function LogoutEverywhere() {
  const titleId = useId();
  const { sessionExpired } = useAuth();
  const handleError = useApiErrorHandler();
  const navigate = useNavigate();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function onConfirm() {
    setBusy(true);
    setError(null);
    try {
      await api.logoutAll();
    } catch (err) {
      // A lost session already sends the user to /login (handleError).
      setError(handleError(err).message);
      setBusy(false);
      return;
    }
    sessionExpired();
    navigate("/login", { replace: true });
  }

  return (
    <section className="card tokens-section logout-all" aria-labelledby={titleId}>
      <h2 id={titleId} className="section-title">
        Log out everywhere
      </h2>
      <p>
        Revokes <strong>all</strong> your API tokens and ends all your sessions, on every device and browser,
        including this one. You will have to sign in again.
      </p>
      {confirming ? (
        <div className="confirm" role="group" aria-label="Confirm logging out everywhere">
          <p className="confirm-text">Are you sure? Every script using one of your tokens stops working.</p>
          <div className="confirm-actions">
            <button
              type="button"
              className="button button-danger"
              onClick={() => void onConfirm()}
              disabled={busy}
              aria-busy={busy}
            >
              {busy ? "Logging out…" : "Yes, log out everywhere"}
            </button>
            <button type="button" className="button button-secondary" onClick={() => setConfirming(false)} disabled={busy}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        <button type="button" className="button button-danger-outline" onClick={() => setConfirming(true)}>
          Log out everywhere
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

/** /account/tokens: the signed-in user's API tokens. */
export function TokensPage() {
  const handleError = useApiErrorHandler();
  const { state, reload, add, remove } = useTokens();
  const [created, setCreated] = useState<CreatedApiToken | null>(null);
  const [message, setMessage] = useState("");
  const listTitleId = useId();
  const createTitleId = useId();

  function onCreated(token: CreatedApiToken) {
    setCreated(token);
    setMessage("");
    if (state.status === "loaded") add(token);
    else reload();
  }

  async function onRevoke(token: ApiToken) {
    try {
      await api.revokeToken(token.id);
    } catch (err) {
      const error = handleError(err);
      if (error.status !== 404) throw error;
      // Revoked meanwhile (e.g. from another tab): it is gone either way.
    }
    remove(token.id);
    if (created?.id === token.id) setCreated(null);
    setMessage(`Token “${token.name}” revoked.`);
  }

  return (
    <main className="page tokens-page">
      <p className="breadcrumb">
        <Link to="/projects">← Your projects</Link>
      </p>
      <h1>API tokens</h1>
      <p className="muted tokens-intro">
        API tokens let scripts and other tools use the Preflab API as you. Treat them like passwords: anyone who has
        one can act as you until it is revoked or expires.
      </p>

      <section className="card tokens-section" aria-labelledby={createTitleId}>
        <h2 id={createTitleId} className="section-title">
          Create a token
        </h2>
        <CreateTokenForm onCreated={onCreated} />
        {created && <NewTokenSecret key={created.id} token={created} onDone={() => setCreated(null)} />}
      </section>

      <section className="tokens-section" aria-labelledby={listTitleId}>
        <h2 id={listTitleId} className="section-title">
          Your tokens
        </h2>
        {state.status === "loading" && <Loading what="tokens" />}
        {state.status === "error" && <LoadError message={state.error.message} onRetry={reload} />}
        {state.status === "loaded" && state.tokens.length === 0 && (
          <p className="empty">You have no API tokens yet.</p>
        )}
        {state.status === "loaded" && state.tokens.length > 0 && <TokenTable tokens={state.tokens} onRevoke={onRevoke} />}
        <p className="muted table-status" role="status">
          {message}
        </p>
      </section>

      <LogoutEverywhere />
    </main>
  );
}
