import { useId } from "react";
import type { Progress } from "../api";

interface MeterProps {
  label: string;
  value: number;
  max: number;
  /** Said by screen readers and shown beside the label. */
  text: string;
}

/** One labelled bar: role="progressbar" with its numbers and a spoken summary. */
function Meter({ label, value, max, text }: MeterProps) {
  const id = useId();
  const top = Math.max(max, value, 1);
  const percent = Math.round((Math.min(value, top) / top) * 100);
  return (
    <div className="meter">
      <div className="meter-label">
        <span id={id}>{label}</span>
        <span className="muted">{text}</span>
      </div>
      <div
        className="meter-track"
        role="progressbar"
        aria-labelledby={id}
        aria-valuemin={0}
        aria-valuemax={top}
        aria-valuenow={Math.min(value, top)}
        aria-valuetext={text}
      >
        <div className="meter-fill" style={{ width: `${percent}%` }} />
      </div>
    </div>
  );
}

function percentOf(value: number, total: number): number {
  return total > 0 ? Math.round((Math.min(value, total) / total) * 100) : 100;
}

/** Your share (done / left for you, with today's count) and the project's coverage. */
export function ProgressBars({ progress }: { progress: Progress }) {
  const yours = progress.done_total + progress.available_to_you;
  const needed = progress.project_judgments_needed;
  return (
    <div className="progress-bars">
      <Meter
        label="Your progress"
        value={progress.done_total}
        max={yours}
        text={`${progress.done_today} today · ${progress.done_total} done · ${progress.available_to_you} left for you`}
      />
      <Meter
        label="Project coverage"
        value={progress.project_judgments}
        max={needed}
        text={`${progress.project_judgments} of ${needed} judgments (${percentOf(progress.project_judgments, needed)}%)`}
      />
    </div>
  );
}
