import { useEffect, useId, useLayoutEffect, useRef, useState, type KeyboardEvent as ReactKeyboardEvent } from "react";
import type { Choice, QueueItem, Strength, SubmitBody } from "../api";
import { ChoiceControls } from "./ChoiceControls";
import { ConversationView } from "./ConversationView";
import { LeaseNotice } from "./LeaseNotice";
import { ResponsePane } from "./ResponsePane";
import { loadDraft, saveDraft } from "./storage";
import { PHONE_QUERY, useMediaQuery } from "./useMediaQuery";
import {
  CHOICE_OPTIONS,
  EMPTY_ANSWER,
  STRENGTH_OPTIONS,
  choiceAllowed,
  needsStrength,
  toSubmitBody,
  type Answer,
} from "./answer";

function isEditable(el: HTMLElement): boolean {
  return el.isContentEditable || el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT";
}

function shortcutChoice(key: string): Choice | null {
  return CHOICE_OPTIONS.find((option) => option.keys.includes(key))?.value ?? null;
}

function shortcutStrength(key: string): Strength | null {
  return STRENGTH_OPTIONS.find((option) => option.key === key)?.value ?? null;
}

type Side = "left" | "right";

const SIDES: { side: Side; label: string }[] = [
  { side: "left", label: "Response 1" },
  { side: "right", label: "Response 2" },
];

/** The phone layout: "Response 1" / "Response 2" tabs (arrow keys, Home and End move between them). */
function ResponseTabs({
  item,
  chosen,
  ids,
}: {
  item: QueueItem;
  chosen: Choice | null;
  ids: Record<Side, { tab: string; panel: string }>;
}) {
  const [shown, setShown] = useState<Side>("left");
  const tabRefs = useRef<Record<Side, HTMLButtonElement | null>>({ left: null, right: null });

  function select(side: Side) {
    setShown(side);
    tabRefs.current[side]?.focus();
  }

  function onKeyDown(event: ReactKeyboardEvent<HTMLDivElement>) {
    // Handled here, the arrows do not reach the page's choice shortcuts.
    const target: Record<string, Side> = {
      ArrowLeft: shown === "left" ? "right" : "left",
      ArrowRight: shown === "left" ? "right" : "left",
      Home: "left",
      End: "right",
    };
    const side = target[event.key];
    if (!side) return;
    event.preventDefault();
    select(side);
  }

  return (
    <div className="responses responses-tabbed">
      <div className="response-tabs" role="tablist" aria-label="Responses" onKeyDown={onKeyDown}>
        {SIDES.map(({ side, label }) => (
          <button
            key={side}
            ref={(el) => {
              tabRefs.current[side] = el;
            }}
            type="button"
            role="tab"
            id={ids[side].tab}
            className="response-tab"
            aria-selected={shown === side}
            aria-controls={ids[side].panel}
            tabIndex={shown === side ? 0 : -1}
            onClick={() => setShown(side)}
          >
            {label}
            {chosen === side && (
              <span className="response-tab-chosen" aria-hidden="true">
                {" "}
                ✓
              </span>
            )}
          </button>
        ))}
      </div>
      {SIDES.map(({ side, label }) => (
        <ResponsePane
          key={side}
          label={label}
          content={item[side].content}
          chosen={chosen === side}
          tab={{ tabId: ids[side].tab, panelId: ids[side].panel, hidden: shown !== side }}
        />
      ))}
    </div>
  );
}

export interface ComparisonItemProps {
  item: QueueItem;
  /** Answer to start from (a rejected submit), else the draft kept for this assignment; render with key={assignment_id}. */
  draft: Answer | null;
  onSubmit(answer: Answer, body: Omit<SubmitBody, "time_taken_ms">): void;
  onSkip(reason: string): void;
}

/** One comparison: prompt, the two responses side by side, and the controls. */
export function ComparisonItem({ item, draft, onSubmit, onSkip }: ComparisonItemProps) {
  const { scheme } = item;
  const [answer, setAnswer] = useState<Answer>(() => draft ?? loadDraft(item.assignment_id) ?? EMPTY_ANSWER);
  const [skipOpen, setSkipOpen] = useState(false);
  const phone = useMediaQuery(PHONE_QUERY);
  const baseId = useId();
  const tabIds = {
    left: { tab: `${baseId}-tab-1`, panel: `${baseId}-panel-1` },
    right: { tab: `${baseId}-tab-2`, panel: `${baseId}-panel-2` },
  };
  const rationaleRef = useRef<HTMLTextAreaElement | null>(null);

  // Keep the answer so far, so that reloading the page shows it again (the queue clears it on
  // submit, skip and release).
  const assignmentId = item.assignment_id;
  useEffect(() => {
    saveDraft(assignmentId, answer);
  }, [assignmentId, answer]);

  function choose(choice: Choice) {
    if (!choiceAllowed(scheme, choice)) return;
    setAnswer((a) => ({ ...a, choice, strength: needsStrength(scheme, choice) ? a.strength : null }));
  }

  function setStrength(strength: Strength) {
    setAnswer((a) => (needsStrength(scheme, a.choice) ? { ...a, strength } : a));
  }

  function submit() {
    const body = toSubmitBody(scheme, answer);
    if (body) onSubmit(answer, body);
  }

  // Keyboard shortcuts; ignored while typing, except Ctrl/Cmd+Enter in the rationale.
  function onKeyDown(event: KeyboardEvent) {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target instanceof HTMLElement ? event.target : null;
    const typing = target !== null && isEditable(target);

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (typing && target !== rationaleRef.current) return;
      event.preventDefault();
      submit();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;

    if (event.key === "Enter") {
      // Enter submits a complete answer even when a button still has focus from a click
      // (Space activates buttons). Links and the skip form keep their own Enter, and so
      // does any other button while the answer is incomplete.
      if (target?.closest("a, .skip-form")) return;
      const complete = toSubmitBody(scheme, answer) !== null;
      if (!complete && target?.closest("button, summary") && !target.closest("[data-shortcut-scope]")) return;
      event.preventDefault();
      if (complete && !event.repeat) submit();
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const choice = shortcutChoice(key);
    const strength = shortcutStrength(key);
    if (choice && choiceAllowed(scheme, choice)) {
      choose(choice);
    } else if (strength !== null && scheme.strength_scale) {
      setStrength(strength);
    } else if (key === "s") {
      setSkipOpen(true);
    } else {
      return;
    }
    event.preventDefault();
  }

  const handleKey = useRef(onKeyDown);
  useLayoutEffect(() => {
    handleKey.current = onKeyDown;
  });
  useEffect(() => {
    const listener = (event: KeyboardEvent) => handleKey.current(event);
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, []);

  return (
    <div className="comparison" data-assignment-id={item.assignment_id}>
      <LeaseNotice expiresAt={item.expires_at} />
      <ConversationView messages={item.messages} />
      {phone ? (
        <ResponseTabs item={item} chosen={answer.choice} ids={tabIds} />
      ) : (
        <div className="responses">
          {SIDES.map(({ side, label }) => (
            <ResponsePane key={side} label={label} content={item[side].content} chosen={answer.choice === side} />
          ))}
        </div>
      )}
      <ChoiceControls
        scheme={scheme}
        byNumber={phone}
        answer={answer}
        rationaleRef={rationaleRef}
        onChoice={choose}
        onStrength={setStrength}
        onRationale={(rationale) => setAnswer((a) => ({ ...a, rationale }))}
        onSubmit={submit}
        skipOpen={skipOpen}
        onSkipOpen={() => setSkipOpen(true)}
        onSkipCancel={() => setSkipOpen(false)}
        onSkipConfirm={onSkip}
      />
    </div>
  );
}
