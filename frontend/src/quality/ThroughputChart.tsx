import type { ThroughputDay } from "../api";
import { CHART_HEIGHT, CHART_WIDTH, MARGIN, PLOT_HEIGHT, PLOT_WIDTH, r, slotX, yScale } from "./chart";
import { fillDays, formatCount, formatDay, labelStride, niceTicks } from "./format";

const MAX_X_LABELS = 8;

/** Judgments per day as bars; days without judgments between the first and the last count as 0. */
export function ThroughputChart({ days }: { days: ThroughputDay[] }) {
  const filled = fillDays(days);
  if (filled.length === 0) return <p className="muted">No judgments yet.</p>;

  const ticks = niceTicks(Math.max(...filled.map((d) => d.judgments)), 4, true);
  const top = ticks[ticks.length - 1]!;
  const y = yScale(0, top);
  const barWidth = Math.max(1, Math.min((PLOT_WIDTH / filled.length) * 0.8, 28));
  const stride = labelStride(filled.length, MAX_X_LABELS);
  const total = filled.reduce((sum, d) => sum + d.judgments, 0);

  return (
    <figure className="chart">
      <svg className="chart-svg throughput-chart" viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`} role="img" aria-label="Throughput">
        <desc>
          Judgments per day over {filled.length} days, {total} in all.
        </desc>
        <g className="chart-grid">
          {ticks.map((t) => (
            <g key={t}>
              <line
                x1={MARGIN.left}
                x2={CHART_WIDTH - MARGIN.right}
                y1={r(y(t))}
                y2={r(y(t))}
                className={t === 0 ? "chart-gridline chart-zero" : "chart-gridline"}
              />
              <text x={MARGIN.left - 8} y={r(y(t))} className="chart-tick chart-tick-y">
                {formatCount(t)}
              </text>
            </g>
          ))}
        </g>
        {filled.map((d, i) => (
          <rect
            key={d.day}
            className="throughput-bar"
            x={r(slotX(i, filled.length) - barWidth / 2)}
            y={r(y(d.judgments))}
            width={r(barWidth)}
            height={r(MARGIN.top + PLOT_HEIGHT - y(d.judgments))}
          >
            <title>{`${d.day}: ${d.judgments} judgment${d.judgments === 1 ? "" : "s"}`}</title>
          </rect>
        ))}
        <g className="chart-x-labels">
          {filled.map((d, i) =>
            i % stride === 0 ? (
              <text key={d.day} x={r(slotX(i, filled.length))} y={MARGIN.top + PLOT_HEIGHT + 16} className="chart-tick chart-tick-x">
                {formatDay(d.day)}
              </text>
            ) : null,
          )}
        </g>
        <text
          className="chart-axis-label"
          transform={`translate(14 ${MARGIN.top + PLOT_HEIGHT / 2}) rotate(-90)`}
          textAnchor="middle"
        >
          Judgments
        </text>
        <text className="chart-axis-label" x={MARGIN.left + PLOT_WIDTH / 2} y={CHART_HEIGHT - 6} textAnchor="middle">
          Day
        </text>
      </svg>
      <figcaption className="muted chart-note">
        {formatCount(total)} judgments over {filled.length} {filled.length === 1 ? "day" : "days"}
      </figcaption>
    </figure>
  );
}
