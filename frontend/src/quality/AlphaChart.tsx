import type { Alpha, WeekQuality } from "../api";
import {
  CHART_HEIGHT,
  CHART_WIDTH,
  MARGIN,
  PLOT_HEIGHT,
  PLOT_WIDTH,
  bandPath,
  linePath,
  r,
  runs,
  slotX,
  yScale,
} from "./chart";
import { formatAlpha, formatDay, formatFixed, labelStride } from "./format";

const Y_STEP = 0.2;
const MAX_X_LABELS = 8;

function finite(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function hasValue(alpha: Alpha): boolean {
  return finite(alpha.value);
}

function hasInterval(alpha: Alpha): boolean {
  return finite(alpha.value) && finite(alpha.low) && finite(alpha.high);
}

/** The y range: at most 1, down to 0 or below the lowest value/CI bound, in steps of 0.2. */
export function alphaDomain(weeks: WeekQuality[]): [number, number] {
  let min = 0;
  for (const week of weeks) {
    for (const alpha of [week.alpha_nominal, week.alpha_ordinal]) {
      for (const v of [alpha.value, alpha.low]) if (finite(v)) min = Math.min(min, v);
    }
  }
  return [Math.max(-1, Number((Math.floor(min / Y_STEP + 1e-9) * Y_STEP).toFixed(1))), 1];
}

interface Series {
  key: "nominal" | "ordinal";
  label: string;
  pick(week: WeekQuality): Alpha;
}

const SERIES: Series[] = [
  { key: "nominal", label: "α nominal", pick: (w) => w.alpha_nominal },
  { key: "ordinal", label: "α ordinal", pick: (w) => w.alpha_ordinal },
];

/**
 * Krippendorff's alpha per week: α nominal as a line with its 95% CI as a shaded band and
 * α ordinal as a dashed second line. Weeks without a value break the lines.
 */
export function AlphaChart({ weeks }: { weeks: WeekQuality[] }) {
  if (weeks.length === 0) return <p className="muted">No judgments yet.</p>;

  const sorted = [...weeks].sort((a, b) => a.week.localeCompare(b.week));
  const [min, max] = alphaDomain(sorted);
  const y = yScale(min, max);
  const x = (i: number) => slotX(i, sorted.length);
  const ticks: number[] = [];
  for (let t = min; t <= max + 1e-9; t += Y_STEP) ticks.push(Number(t.toFixed(1)));
  const stride = labelStride(sorted.length, MAX_X_LABELS);
  const nominal = SERIES[0]!;
  const anyValue = sorted.some((w) => hasValue(w.alpha_nominal) || hasValue(w.alpha_ordinal));

  const bands = runs(sorted.length, (i) => hasInterval(sorted[i]!.alpha_nominal)).map((run) =>
    bandPath(
      run.map(x),
      run.map((i) => y(sorted[i]!.alpha_nominal.high!)),
      run.map((i) => y(sorted[i]!.alpha_nominal.low!)),
    ),
  );

  return (
    <figure className="chart">
      <svg
        className="chart-svg alpha-chart"
        viewBox={`0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`}
        role="img"
        aria-label="Agreement over time"
      >
        <desc>
          Krippendorff's alpha per week, nominal with its 95% confidence interval and ordinal, over{" "}
          {sorted.length} weeks.
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
                {formatFixed(t, 1)}
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
        <text
          className="chart-axis-label"
          transform={`translate(14 ${MARGIN.top + PLOT_HEIGHT / 2}) rotate(-90)`}
          textAnchor="middle"
        >
          Krippendorff's α
        </text>
        <text className="chart-axis-label" x={MARGIN.left + PLOT_WIDTH / 2} y={CHART_HEIGHT - 6} textAnchor="middle">
          Week (starting Monday)
        </text>

        {bands.map((d, i) => (
          <path key={i} d={d} className="alpha-band" />
        ))}
        {SERIES.map((series) =>
          runs(sorted.length, (i) => hasValue(series.pick(sorted[i]!))).map((run) => (
            <path
              key={`${series.key}-${run[0]}`}
              d={linePath(run.map((i) => [x(i), y(series.pick(sorted[i]!).value!)]))}
              className={`alpha-line alpha-line-${series.key}`}
            />
          )),
        )}
        {SERIES.map((series) =>
          sorted.map((week, i) => {
            const alpha = series.pick(week);
            if (!hasValue(alpha)) return null;
            return (
              <circle
                key={`${series.key}-${week.week}`}
                cx={r(x(i))}
                cy={r(y(alpha.value!))}
                r={series === nominal ? 3.5 : 3}
                className={`alpha-point alpha-point-${series.key}`}
              >
                <title>
                  {`Week of ${week.week}: ${series.label} = ${formatAlpha(alpha)} (${week.judgments} judgments)`}
                </title>
              </circle>
            );
          }),
        )}
      </svg>
      <figcaption>
        <ul className="chart-legend">
          <li>
            <span className="legend-swatch legend-line-nominal" aria-hidden="true" /> α nominal
          </li>
          <li>
            <span className="legend-swatch legend-band" aria-hidden="true" /> 95% CI (nominal)
          </li>
          <li>
            <span className="legend-swatch legend-line-ordinal" aria-hidden="true" /> α ordinal
          </li>
        </ul>
        {!anyValue && <p className="muted">Not enough data in any week to compute α yet.</p>}
      </figcaption>
    </figure>
  );
}
