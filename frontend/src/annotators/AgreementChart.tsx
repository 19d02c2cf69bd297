import { CHART_HEIGHT, CHART_WIDTH, MARGIN, PLOT_HEIGHT, PLOT_WIDTH, linePath, r, runs, slotX, yScale } from "../quality/chart";
import { formatDay, formatPercent, labelStride } from "../quality/format";
import type { AnnotatorWeek } from "./types";

const MAX_X_LABELS = 8;
const TICKS = [0, 0.25, 0.5, 0.75, 1];

interface Series {
  key: "nominal" | "ordinal";
  label: string;
  pick(week: AnnotatorWeek): number | null;
}

// the dashboard's line styles: solid for the consensus, dashed for the pairs
const SERIES: Series[] = [
  { key: "nominal", label: "Agrees with consensus", pick: (w) => w.consensus_agreement },
  { key: "ordinal", label: "Agrees with other annotators (pairs)", pick: (w) => w.pairwise_agreement },
];

/** The annotator's agreement per week, 0–100 %: with the others' majority and pair by pair. */
export function AgreementChart({ weeks }: { weeks: AnnotatorWeek[] }) {
  if (weeks.length === 0) return <p className="muted">No judgments yet.</p>;
  const sorted = [...weeks].sort((a, b) => a.week.localeCompare(b.week));
  const y = yScale(0, 1);
  const x = (i: number) => slotX(i, sorted.length);
  const stride = labelStride(sorted.length, MAX_X_LABELS);
  const present = (s: Series, i: number) => s.pick(sorted[i]!) !== null;

  return (
    <figure className="chart">
      <svg
        className="chart-svg agreement-chart"
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label="Agreement by week"
      >
        <desc>Share of agreement with the consensus and with other annotators, per week, over {sorted.length} weeks.</desc>
        <g className="chart-grid">
          {TICKS.map((t) => (
            <g key={t}>
              <line x1={MARGIN.left} x2={CHART_WIDTH - MARGIN.right} y1={r(y(t))} y2={r(y(t))} className="chart-gridline" />
              <text x={MARGIN.left - 8} y={r(y(t))} className="chart-tick chart-tick-y">
                {formatPercent(t)}
              </text>
            </g>
          ))}
        </g>
        <g className="chart-x-labels">
          {sorted.map((week, i) =>
            i % stride === 0 ? (
              <text key={week.week} x={r(x(i))} y={MARGIN.top + PLOT_HEIGHT + 16} className="chart-tick chart-tick-x">
                {formatDay(week.week)}
              </text>
            ) : null,
          )}
        </g>
        <text className="chart-axis-label" x={MARGIN.left + PLOT_WIDTH / 2} y={CHART_HEIGHT - 6} textAnchor="middle">
          Week (starting Monday)
        </text>
        {SERIES.map((s) =>
          runs(sorted.length, (i) => present(s, i)).map((run) => (
            <path
              key={`${s.key}-${run[0]}`}
              d={linePath(run.map((i) => [x(i), y(s.pick(sorted[i]!)!)]))}
              className={`alpha-line alpha-line-${s.key}`}
            />
          )),
        )}
        {SERIES.map((s) =>
          sorted.map((week, i) => {
            const value = s.pick(week);
            if (value === null) return null;
            return (
              <circle key={`${s.key}-${week.week}`} cx={r(x(i))} cy={r(y(value))} r={3.5} className={`alpha-point alpha-point-${s.key}`}>
                <title>{`Week of ${week.week}: ${s.label} ${formatPercent(value)}`}</title>
              </circle>
            );
          }),
        )}
      </svg>
      <figcaption>
        <ul className="chart-legend">
          <li>
            <span className="legend-swatch legend-line-nominal" aria-hidden="true" /> {SERIES[0]!.label}
          </li>
          <li>
            <span className="legend-swatch legend-line-ordinal" aria-hidden="true" /> {SERIES[1]!.label}
          </li>
        </ul>
      </figcaption>
    </figure>
  );
}
