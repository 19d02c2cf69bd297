import { useCallback, useId, type ReactNode } from "react";
import { Link } from "react-router-dom";
import { request } from "../api";
import { Loading, LoadError } from "../components/LoadStatus";
import { isForbidden, useLoad } from "../console/useLoad";
import { ExclusionLog } from "../quality/ExclusionLog";
import { formatCount, formatDateTime, formatPValue, formatPercent, formatSeconds } from "../quality/format";
import { ThroughputChart } from "../quality/ThroughputChart";
import { AgreementChart } from "./AgreementChart";
import type { AnnotatorReport, AnnotatorWeek, PositionBias, RecentJudgment } from "./types";

export const THROUGHPUT_DAYS = 30;

export function loadAnnotator(projectId: number, userId: number, signal?: AbortSignal): Promise<AnnotatorReport> {
  return request<AnnotatorReport>(`/api/projects/${projectId}/annotators/${userId}/?days=${THROUGHPUT_DAYS}`, { signal });
}

function Section({ title, children, className }: { title: string; children: ReactNode; className?: string }) {
  const id = useId();
  return (
    <section className={className ? `quality-section ${className}` : "quality-section"} aria-labelledby={id}>
      <h2 id={id} className="quality-section-title">
        {title}
      </h2>
      {children}
    </section>
  );
}

function Card({ label, value, detail }: { label: string; value: ReactNode; detail?: ReactNode }) {
  return (
    <div className="summary-card">
      <dt>{label}</dt>
      <dd className="summary-value">{value}</dd>
      {detail && <dd className="summary-detail">{detail}</dd>}
    </div>
  );
}

/** "+10.0 pts" from a deviation of the left share from one half. */
export function formatDeviation(deviation: number | null): string {
  if (deviation === null) return "—";
  const points = deviation * 100;
  return `${points > 0 ? "+" : points < 0 ? "−" : "±"}${Math.abs(points).toFixed(1)} pts`;
}

function PositionBiasPanel({ bias }: { bias: PositionBias }) {
  if (bias.decided === 0) return <p className="muted">No left/right choices yet.</p>;
  return (
    <div data-testid="position-bias">
      <p>
        Picked the left response in <strong>{formatPercent(bias.left_share)}</strong> of {formatCount(bias.decided)} left/right
        choices ({formatCount(bias.left)} left, {formatCount(bias.right)} right): {formatDeviation(bias.deviation)} from 50%,
        95% CI {formatPercent(bias.ci_low)}–{formatPercent(bias.ci_high)}, p = {formatPValue(bias.p_value)}.
      </p>
      <p className="muted">Method: {bias.method}.</p>
    </div>
  );
}

function WeekTable({ weeks }: { weeks: AnnotatorWeek[] }) {
  if (weeks.length === 0) return null;
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Agreement by week">
        <thead>
          <tr>
            <th scope="col">Week</th>
            <th scope="col" className="numeric">
              Judgments
            </th>
            <th scope="col" className="numeric">
              With consensus
            </th>
            <th scope="col" className="numeric">
              With others (pairs)
            </th>
            <th scope="col" className="numeric">
              Gold
            </th>
          </tr>
        </thead>
        <tbody>
          {weeks.map((w) => (
            <tr key={w.week}>
              <th scope="row">{w.week}</th>
              <td className="numeric">{formatCount(w.judgments)}</td>
              <td className="numeric">
                {formatPercent(w.consensus_agreement)} <span className="cell-note">of {formatCount(w.consensus_judgments)}</span>
              </td>
              <td className="numeric">
                {formatPercent(w.pairwise_agreement)} <span className="cell-note">of {formatCount(w.pairs)}</span>
              </td>
              <td className="numeric">{w.gold_total ? `${w.gold_correct} / ${w.gold_total}` : "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function agreementLabel(row: RecentJudgment): string {
  if (row.is_gold) return row.gold_correct ? "gold: correct" : "gold: wrong";
  if (row.agrees_with_consensus === null) return "no majority";
  return row.agrees_with_consensus ? "agrees" : "disagrees";
}

function RecentTable({ rows }: { rows: RecentJudgment[] }) {
  if (rows.length === 0) return <p className="muted">No judgments yet.</p>;
  return (
    <div className="table-wrap">
      <table className="table table-compact" aria-label="Recent judgments">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Comparison</th>
            <th scope="col">Choice</th>
            <th scope="col" className="numeric">
              Strength
            </th>
            <th scope="col" className="numeric">
              Time
            </th>
            <th scope="col">Consensus</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.judgment_id} data-judgment-id={row.judgment_id}>
              <td>
                <time dateTime={row.created_at}>{formatDateTime(row.created_at)}</time>
              </td>
              <td>
                {row.prompt_external_id} <span className="cell-note">#{row.comparison_id}</span>
              </td>
              <td>
                {row.choice} <span className="cell-note">(shown {row.display_choice.replace("_", " ")})</span>
              </td>
              <td className="numeric">{row.strength ?? "—"}</td>
              <td className="numeric">{formatSeconds(row.time_taken_ms === null ? null : row.time_taken_ms / 1000)}</td>
              <td>{agreementLabel(row)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** One annotator of a project, for its admins: /projects/:projectId/annotators/:userId. */
export function AnnotatorPage({ projectId, userId }: { projectId: number; userId: number }) {
  const load = useCallback((signal: AbortSignal) => loadAnnotator(projectId, userId, signal), [projectId, userId]);
  const { state, reload } = useLoad(load);
  const breadcrumb = (
    <p className="breadcrumb">
      <Link to={`/projects/${projectId}/quality`}>← Quality dashboard</Link>
    </p>
  );

  if (state.status === "loading") {
    return (
      <main className="page page-wide quality-page">
        {breadcrumb}
        <Loading what="the annotator" />
      </main>
    );
  }
  if (state.status === "error") {
    const { error } = state;
    let message: ReactNode = <LoadError message={error.message} onRetry={reload} />;
    if (isForbidden(error)) message = <p className="error">You need to be a project admin to see this page.</p>;
    else if (error.status === 404) message = <p className="error">No such annotator in this project.</p>;
    return (
      <main className="page page-wide quality-page">
        {breadcrumb}
        <div className="card">{message}</div>
      </main>
    );
  }

  const { annotator, throughput, gold, position_bias: bias } = state.data;
  return (
    <main className="page page-wide quality-page">
      {breadcrumb}
      <header className="quality-header">
        <div>
          <p className="eyebrow">Annotator</p>
          <h1>
            {annotator.username}{" "}
            {annotator.excluded && <span className="badge badge-excluded">Excluded</span>}
          </h1>
          <p className="muted">{annotator.role ? `Role: ${annotator.role.replace("_", " ")}` : "No longer a member"}</p>
        </div>
      </header>
      <Section title="Summary">
        <dl className="summary-cards">
          <Card
            label="Judgments"
            value={formatCount(throughput.judgments_total)}
            detail={`${formatCount(throughput.judgments_in_range)} in the last ${throughput.days} days`}
          />
          <Card label="Median time" value={formatSeconds(throughput.median_seconds)} detail="per judgment" />
          <Card
            label="Gold accuracy"
            value={formatPercent(gold.accuracy)}
            detail={`${formatCount(gold.correct)} of ${formatCount(gold.total)} gold items`}
          />
          <Card label="Left share" value={formatPercent(bias.left_share)} detail={`p = ${formatPValue(bias.p_value)}`} />
        </dl>
      </Section>
      <div className="quality-charts">
        <Section title="Agreement by week" className="card">
          <AgreementChart weeks={state.data.agreement_weeks} />
        </Section>
        <Section title={`Throughput (last ${throughput.days} days)`} className="card">
          <ThroughputChart days={throughput.per_day} />
        </Section>
      </div>
      <Section title="Weekly figures">
        <WeekTable weeks={state.data.agreement_weeks} />
      </Section>
      <Section title="Position bias">
        <PositionBiasPanel bias={bias} />
      </Section>
      <Section title="Recent judgments">
        <RecentTable rows={state.data.recent} />
      </Section>
      <Section title="Exclusion history">
        {state.data.exclusions.length === 0 ? (
          <p className="muted">Never excluded from this project.</p>
        ) : (
          <ExclusionLog exclusions={state.data.exclusions} />
        )}
      </Section>
    </main>
  );
}
