import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import type { User } from "../api";
import { useAuth } from "../auth";

export function TopBar({ user }: { user: User }) {
  const { logout } = useAuth();
  const navigate = useNavigate();
  const [busy, setBusy] = useState(false);

  async function onLogout() {
    setBusy(true);
    try {
      await logout();
    } catch {
      // The local session is cleared either way; nothing else to do.
    } finally {
      setBusy(false);
      navigate("/login", { replace: true });
    }
  }

  return (
    <header className="topbar">
      <Link to="/projects" className="brand">
        Preflab
      </Link>
      <div className="topbar-user">
        <span className="username" title="Signed in as">
          {user.username}
        </span>
        <Link to="/account/tokens" className="topbar-link">
          API tokens
        </Link>
        <button type="button" className="button button-secondary" onClick={onLogout} disabled={busy}>
          Log out
        </button>
      </div>
    </header>
  );
}
