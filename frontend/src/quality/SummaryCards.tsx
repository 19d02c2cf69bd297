import type { ReactNode } from "react";
import type { Alpha, QualitySummary } from "../api";
import { formatAlpha, formatCount, formatPercent, formatSeconds } from "./format";

interface CardProps {
  label: string;
  value: ReactNode;
  detail?: ReactNode;
  /** Extra class for the value (e.g. a smaller font for "0.62 [0.58, 0.66]"). */
  kind?: "alpha";
  muted?: boolean;
}

function Card({ label, value, detail, kind, muted }: CardProps) {
  const className = ["summary-value", kind && `summary-value-${kind}`, muted && "summary-value-missing"].filter(Boolean).join(" ");
  return (
    <div className="summary-card">
      <dt>{label}</dt>
      <dd className={className}>{value}</dd>
      {detail && <dd className="summary-detail">{detail}</dd>}
    </div>
  );
}

function alphaDetail(alpha: Alpha): string {
  const units = `${formatCount(alpha.units)} pairable comparisons`;
  return alpha.value === null ? `Krippendorff · ${units}` : `Krippendorff, 95% CI · ${units}`;
}

/** The headline numbers of a project: volume, coverage and agreement. */
export function SummaryCards({ summary }: { summary: QualitySummary }) {
  return (
    <dl className="summary-cards">
      <Card label="Judgments" value={formatCount(summary.judgments)} />
      <Card
        label="Coverage"
        value={formatPercent(summary.coverage)}
        detail={`${formatCount(summary.comparisons_complete)} of ${formatCount(summary.comparisons)} comparisons complete`}
      />
      <Card label="Annotators" value={formatCount(summary.annotators)} />
      <Card
        label="α nominal"
        value={formatAlpha(summary.alpha_nominal)}
        kind="alpha"
        muted={summary.alpha_nominal.value === null}
        detail={alphaDetail(summary.alpha_nominal)}
      />
      <Card
        label="α ordinal"
        value={formatAlpha(summary.alpha_ordinal)}
        kind="alpha"
        muted={summary.alpha_ordinal.value === null}
        detail={alphaDetail(summary.alpha_ordinal)}
      />
      <Card label="Percent agreement" value={formatPercent(summary.percent_agreement)} />
      <Card
        label="Gold accuracy"
        value={formatPercent(summary.gold_accuracy)}
        detail={`${formatCount(summary.gold_judgments)} gold judgments`}
      />
      <Card label="Median time per judgment" value={formatSeconds(summary.median_seconds)} />
    </dl>
  );
}
