import { linePath, r } from "../quality/chart";
import { formatMetric } from "./format";
import { thin } from "./metrics";

export const METRIC_WIDTH = 320;
export const METRIC_HEIGHT = 150;
const M = { top: 10, right: 12, bottom: 24, left: 52 } as const;
const PW = METRIC_WIDTH - M.left - M.right;
const PH = METRIC_HEIGHT - M.top - M.bottom;
const MAX_POINTS = 400;

/** [min, max] of the values with a little room; a flat series gets a band around its value. */
export function metricDomain(values: number[]): [number, number] {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    return [min - pad, max + pad];
  }
  const pad = (max - min) * 0.05;
  min -= pad;
  max += pad;
  return [min, max];
}

/** One metric over the steps, as a small line chart (hand-written SVG, no inline styles). */
export function MetricChart({ name, points }: { name: string; points: [number, number][] }) {
  const last = points[points.length - 1];
  if (!last) return null;
  const shown = thin(points, MAX_POINTS);
  const [min, max] = metricDomain(shown.map((p) => p[1]));
  const firstStep = shown[0]![0];
  const lastStepValue = last[0];
  const stepSpan = lastStepValue - firstStep || 1;
  const x = (step: number) => (shown.length === 1 ? M.left + PW / 2 : M.left + ((step - firstStep) / stepSpan) * PW);
  const y = (value: number) => M.top + ((max - value) / (max - min)) * PH;
  const ticks = [max, (min + max) / 2, min];

  return (
    <figure className="chart metric-chart" data-testid="metric-chart" data-metric={name}>
      <figcaption className="metric-chart-caption">
        <span className="metric-chart-name">{name}</span>{" "}
        <span className="metric-chart-last" data-testid="metric-last">
          {formatMetric(last[1])}
        </span>{" "}
        <span className="muted">at step {formatMetric(lastStepValue)}</span>
      </figcaption>
      <svg
        className="chart-svg metric-chart-svg"
        viewBox={`0 0 ${METRIC_WIDTH} ${METRIC_HEIGHT}`}
        role="img"
        aria-label={`${name} by step`}
      >
        <desc>
          {name} over {points.length} logged {points.length === 1 ? "step" : "steps"}, from step {firstStep} to {lastStepValue};
          latest {formatMetric(last[1])}.
        </desc>
        <g className="chart-grid">
          {ticks.map((t, i) => (
            <g key={i}>
              <line x1={M.left} x2={METRIC_WIDTH - M.right} y1={r(y(t))} y2={r(y(t))} className="chart-gridline" />
              <text x={M.left - 6} y={r(y(t))} className="chart-tick chart-tick-y">
                {formatMetric(t)}
              </text>
            </g>
          ))}
        </g>
        <text x={M.left} y={METRIC_HEIGHT - 6} className="chart-tick metric-tick-start">
          {formatMetric(firstStep)}
        </text>
        <text x={METRIC_WIDTH - M.right} y={METRIC_HEIGHT - 6} className="chart-tick metric-tick-end">
          {formatMetric(lastStepValue)}
        </text>
        {shown.length > 1 && <path className="metric-line" d={linePath(shown.map(([s, v]) => [x(s), y(v)]))} />}
        <circle className="metric-point" cx={r(x(lastStepValue))} cy={r(y(last[1]))} r={3}>
          <title>{`${name} = ${formatMetric(last[1])} at step ${lastStepValue}`}</title>
        </circle>
      </svg>
    </figure>
  );
}
