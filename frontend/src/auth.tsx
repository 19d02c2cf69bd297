import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, ApiError, type User } from "./api";

export type AuthState =
  | { status: "loading" }
  | { status: "authenticated"; user: User }
  | { status: "anonymous" }
  | { status: "error"; error: ApiError };

export interface AuthContextValue {
  state: AuthState;
  /** Logs in (fetching the CSRF cookie first) and stores the user. */
  login(username: string, password: string): Promise<User>;
  /** Logs out on the server (best effort) and forgets the user. */
  logout(): Promise<void>;
  /** Marks the session as gone, e.g. after a 403 not_authenticated. */
  sessionExpired(): void;
  /** Re-runs GET /api/auth/me/. */
  refresh(): void;
}

const AuthContext = createContext<AuthContextValue | null>(null);

function isNotAuthenticated(err: ApiError): boolean {
  return err.code === "not_authenticated" || err.status === 401 || err.status === 403;
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>({ status: "loading" });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    api
      .me(controller.signal)
      .then((user) => setState({ status: "authenticated", user }))
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        if (err instanceof ApiError) {
          setState(isNotAuthenticated(err) ? { status: "anonymous" } : { status: "error", error: err });
        } else {
          setState({ status: "error", error: new ApiError(0, "unknown_error", String(err)) });
        }
      });
    return () => controller.abort();
  }, [generation]);

  const login = useCallback(async (username: string, password: string) => {
    await api.csrf();
    const user = await api.login(username, password);
    setState({ status: "authenticated", user });
    return user;
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.logout();
    } finally {
      setState({ status: "anonymous" });
    }
  }, []);

  const sessionExpired = useCallback(() => setState({ status: "anonymous" }), []);

  const refresh = useCallback(() => {
    setState({ status: "loading" });
    setGeneration((g) => g + 1);
  }, []);

  const value = useMemo(
    () => ({ state, login, logout, sessionExpired, refresh }),
    [state, login, logout, sessionExpired, refresh],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthContextValue {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth must be used inside <AuthProvider>");
  return ctx;
}

/** Handles an API error from a page: a lost session sends the user to /login. */
export function useApiErrorHandler(): (err: unknown) => ApiError {
  const { sessionExpired } = useAuth();
  return useCallback(
    (err: unknown) => {
      const apiErr = err instanceof ApiError ? err : new ApiError(0, "unknown_error", String(err));
      if (apiErr.code === "not_authenticated") sessionExpired();
      return apiErr;
    },
    [sessionExpired],
  );
}
