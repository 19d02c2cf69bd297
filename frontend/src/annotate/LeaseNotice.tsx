import { useEffect, useState } from "react";

const MAX_TIMER_MS = 60 * 60 * 1000;

/** True once the ISO time has passed (re-renders when it does); false for an invalid time. */
export function useIsPast(iso: string): boolean {
  const deadline = Date.parse(iso);
  const [now, setNow] = useState(() => Date.now());
  const past = Number.isFinite(deadline) && now >= deadline;

  useEffect(() => {
    if (!Number.isFinite(deadline) || past) return;
    const wait = Math.min(Math.max(deadline - Date.now(), 0) + 50, MAX_TIMER_MS);
    const timer = window.setTimeout(() => setNow(Date.now()), wait);
    return () => window.clearTimeout(timer);
  }, [deadline, past, now]);

  return past;
}

/** Shown once the current item's lease has run out (the answer may still be accepted). */
export function LeaseNotice({ expiresAt }: { expiresAt: string }) {
  const expired = useIsPast(expiresAt);
  if (!expired) return null;
  return (
    <p className="notice notice-warning" role="status">
      This item's lease expired; your answer will be accepted if the comparison still needs it.
    </p>
  );
}
