import { useId, useState, type FormEvent, type ReactNode, type RefObject } from "react";
import type { Choice, LabelScheme, Strength } from "../api";
import { CHOICE_OPTIONS, STRENGTH_OPTIONS, choiceAllowed, missingParts, needsStrength, type Answer } from "./answer";

interface KeyButtonProps {
  label: string;
  hint: string;
  shortcuts: string;
  pressed?: boolean;
  disabled?: boolean;
  className?: string;
  onClick(): void;
}

/** A button whose accessible name is exactly `label`, with its shortcut shown beside it. */
function KeyButton({ label, hint, shortcuts, pressed, disabled, className, onClick }: KeyButtonProps) {
  return (
    <button
      type="button"
      className={className ?? "button button-choice"}
      aria-label={label}
      aria-pressed={pressed}
      aria-keyshortcuts={shortcuts}
      disabled={disabled}
      onClick={onClick}
    >
      <span>{label}</span>
      <kbd className="key-hint" aria-hidden="true">
        {hint}
      </kbd>
    </button>
  );
}

const ARIA_KEYS: Record<string, string> = { ArrowLeft: "ArrowLeft", ArrowRight: "ArrowRight" };

function ariaShortcuts(keys: string[]): string {
  return keys.map((k) => ARIA_KEYS[k] ?? k.toUpperCase()).join(" ");
}

function SkipForm({ onConfirm, onCancel }: { onConfirm(reason: string): void; onCancel(): void }) {
  const id = useId();
  const [reason, setReason] = useState("");

  function onSubmit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    onConfirm(reason);
  }

  return (
    <form className="skip-form" aria-label="Skip this item" onSubmit={onSubmit}>
      <label htmlFor={id}>Reason for skipping (optional)</label>
      <input
        id={id}
        autoFocus
        maxLength={500}
        value={reason}
        onChange={(e) => setReason(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            onCancel();
          }
        }}
      />
      <div className="skip-form-actions">
        <button type="submit" className="button button-secondary">
          Confirm
        </button>
        <button type="button" className="button button-secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Group({ label, className, children }: { label: string; className?: string; children: ReactNode }) {
  return (
    <div className={`control-group ${className ?? ""}`.trim()} role="group" aria-label={label} data-shortcut-scope="">
      {children}
    </div>
  );
}

export interface ChoiceControlsProps {
  scheme: LabelScheme;
  answer: Answer;
  /** Name the responses "Response 1/2" rather than left/right (the phone layout's tabs). */
  byNumber?: boolean;
  rationaleRef: RefObject<HTMLTextAreaElement | null>;
  onChoice(choice: Choice): void;
  onStrength(strength: Strength): void;
  onRationale(text: string): void;
  onSubmit(): void;
  skipOpen: boolean;
  onSkipOpen(): void;
  onSkipCancel(): void;
  onSkipConfirm(reason: string): void;
}

/** Choice, strength, rationale, Submit and Skip — mouse and keyboard. */
export function ChoiceControls(props: ChoiceControlsProps) {
  const { scheme, answer } = props;
  const rationaleId = useId();
  const missing = missingParts(scheme, answer);
  const complete = missing.length === 0;
  const choices = CHOICE_OPTIONS.filter((option) => choiceAllowed(scheme, option.value));

  return (
    <section className="controls" aria-label="Your judgment">
      <Group label="Which response is better?" className="control-group-choice">
        {choices.map((option) => (
          <KeyButton
            key={option.value}
            label={props.byNumber ? option.numberedLabel : option.label}
            hint={option.hint}
            shortcuts={ariaShortcuts(option.keys)}
            pressed={answer.choice === option.value}
            onClick={() => props.onChoice(option.value)}
          />
        ))}
      </Group>

      {needsStrength(scheme, answer.choice) && (
        <Group label="How much better?" className="control-group-strength">
          <span className="control-label">How much better?</span>
          {STRENGTH_OPTIONS.map((option) => (
            <KeyButton
              key={option.value}
              label={option.label}
              hint={option.key.toUpperCase()}
              shortcuts={option.key.toUpperCase()}
              pressed={answer.strength === option.value}
              className="button button-choice button-strength"
              onClick={() => props.onStrength(option.value)}
            />
          ))}
        </Group>
      )}

      {scheme.rationale_mode !== "off" && (
        <div className="rationale">
          <label htmlFor={rationaleId}>Rationale</label>
          <span id={`${rationaleId}-hint`} className="hint">
            {scheme.rationale_mode === "required" ? "Required." : "Optional."}
            <span className="key-hint">
              {" "}
              <kbd>Ctrl</kbd>+<kbd>Enter</kbd> submits.
            </span>
          </span>
          <textarea
            id={rationaleId}
            ref={props.rationaleRef}
            rows={2}
            maxLength={10_000}
            required={scheme.rationale_mode === "required"}
            aria-required={scheme.rationale_mode === "required"}
            aria-describedby={`${rationaleId}-hint`}
            value={answer.rationale}
            onChange={(e) => props.onRationale(e.target.value)}
          />
        </div>
      )}

      <div className="control-actions">
        <KeyButton
          label="Submit"
          hint="Enter"
          shortcuts="Enter"
          disabled={!complete}
          className="button button-submit"
          onClick={props.onSubmit}
        />
        <KeyButton
          label="Skip"
          hint="S"
          shortcuts="S"
          className="button button-secondary"
          onClick={props.onSkipOpen}
        />
        {!complete && <span className="hint">Still needed: {missing.join(", ")}.</span>}
      </div>

      {props.skipOpen && <SkipForm onConfirm={props.onSkipConfirm} onCancel={props.onSkipCancel} />}
    </section>
  );
}
