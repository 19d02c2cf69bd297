import { useCallback, useEffect, useState } from "react";
import { api, type ApiError, type ApiToken } from "./api";
import { useApiErrorHandler } from "./auth";

export type TokensState =
  | { status: "loading" }
  | { status: "loaded"; tokens: ApiToken[] }
  | { status: "error"; error: ApiError };

export interface TokensHook {
  state: TokensState;
  /** Refetches the list (the old one stays on screen meanwhile). */
  reload(): void;
  /** Puts a token the server just created at the top of the list (without its secret). */
  add(token: ApiToken): void;
  /** Drops a revoked token from the list. */
  remove(tokenId: number): void;
}

/** Loads GET /api/auth/tokens/ (the user's own tokens, newest first). */
export function useTokens(): TokensHook {
  const handleError = useApiErrorHandler();
  const [state, setState] = useState<TokensState>({ status: "loading" });
  const [generation, setGeneration] = useState(0);

  useEffect(() => {
    const controller = new AbortController();
    api
      .tokens(controller.signal)
      .then((tokens) => setState({ status: "loaded", tokens }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setState({ status: "error", error: handleError(err) });
      });
    return () => controller.abort();
  }, [generation, handleError]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  const add = useCallback((token: ApiToken) => {
    // Never keep the secret in the list, whatever the caller passes.
    const { id, name, prefix, created_at, expires_at, last_used_at } = token;
    const listed: ApiToken = { id, name, prefix, created_at, expires_at, last_used_at };
    setState((s) =>
      s.status === "loaded" ? { status: "loaded", tokens: [listed, ...s.tokens.filter((t) => t.id !== id)] } : s,
    );
  }, []);
  const remove = useCallback((tokenId: number) => {
    setState((s) => (s.status === "loaded" ? { status: "loaded", tokens: s.tokens.filter((t) => t.id !== tokenId) } : s));
  }, []);
  return { state, reload, add, remove };
}
