import { useEffect, useRef, useState } from "react";
import type { QueueState } from "./useQueue";

function isEditable(el: EventTarget | null): boolean {
  if (!(el instanceof HTMLElement)) return false;
  return el.isContentEditable || el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT";
}

/**
 * "Undo" for the latest judgment, shown while the undo window lasts and nothing else is being
 * sent; the `u` key does the same (not while typing; no other shortcut uses it).
 */
export function UndoButton({
  state,
  now = Date.now,
  onUndo,
}: {
  state: Pick<QueueState, "undoable" | "undoing" | "pending">;
  now?: () => number;
  onUndo(): void;
}) {
  const until = state.undoable?.until ?? 0;
  const [open, setOpen] = useState(() => until > now());
  useEffect(() => {
    const left = until - now();
    setOpen(left > 0);
    if (left <= 0) return;
    const timer = setTimeout(() => setOpen(false), left);
    return () => clearTimeout(timer);
  }, [until, now]);

  const visible = open && state.undoable !== null && state.pending === 0;
  const handler = useRef(onUndo);
  handler.current = onUndo;
  useEffect(() => {
    if (!visible) return;
    const listener = (event: KeyboardEvent) => {
      if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key.toLowerCase() !== "u" || isEditable(event.target)) return;
      event.preventDefault();
      handler.current();
    };
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, [visible]);

  if (!visible) return null;
  return (
    <button
      type="button"
      className="button button-secondary undo-button"
      onClick={() => handler.current()}
      disabled={state.undoing}
      aria-keyshortcuts="u"
    >
      Undo last answer <kbd>U</kbd>
    </button>
  );
}
