import { formatCount, formatPercent } from "../quality/format";
import { r } from "../quality/chart";
import { formatWinRate } from "./format";
import type { WinRate } from "./types";

const WIDTH = 320;
const HEIGHT = 44;
const LEFT = 10;
const RIGHT = 10;
const PLOT = WIDTH - LEFT - RIGHT;
const LINE_Y = 18;

function finite(value: number | null | undefined): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** True when the reward model expects more wins than the humans' 95% CI allows. */
export function overOptimized(rate: WinRate): boolean {
  return finite(rate.predicted) && finite(rate.ci_high) && rate.predicted > rate.ci_high;
}

/** A 0–100 % scale with the humans' CI as a band, their win rate as a dot and the prediction as a diamond. */
function WinRateScale({ rate }: { rate: WinRate }) {
  const x = (share: number) => LEFT + Math.max(0, Math.min(1, share)) * PLOT;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <svg className="chart-svg win-rate-scale" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label="Win rate scale">
      <desc>
        Human win rate {formatWinRate(rate)}; reward model's prediction{" "}
        {finite(rate.predicted) ? formatPercent(rate.predicted) : "not available"}.
      </desc>
      <line className="win-rate-axis" x1={LEFT} x2={LEFT + PLOT} y1={LINE_Y} y2={LINE_Y} />
      {ticks.map((t) => (
        <g key={t}>
          <line className={t === 0.5 ? "win-rate-tick win-rate-even" : "win-rate-tick"} x1={r(x(t))} x2={r(x(t))} y1={LINE_Y - 6} y2={LINE_Y + 6} />
          <text className="chart-tick chart-tick-x" x={r(x(t))} y={LINE_Y + 20}>
            {formatPercent(t)}
          </text>
        </g>
      ))}
      {finite(rate.ci_low) && finite(rate.ci_high) && (
        <rect
          className="win-rate-band"
          x={r(x(rate.ci_low))}
          y={LINE_Y - 5}
          width={r(Math.max(1, x(rate.ci_high) - x(rate.ci_low)))}
          height={10}
        />
      )}
      {finite(rate.win_rate) && (
        <circle className="win-rate-human" cx={r(x(rate.win_rate))} cy={LINE_Y} r={4.5}>
          <title>{`Annotators: ${formatWinRate(rate)}`}</title>
        </circle>
      )}
      {finite(rate.predicted) && (
        <path
          className="win-rate-predicted"
          d={`M${r(x(rate.predicted))} ${LINE_Y - 7} l6 7 l-6 7 l-6 -7 Z`}
        >
          <title>{`Reward model: ${formatPercent(rate.predicted)}`}</title>
        </path>
      )}
    </svg>
  );
}

/** The new policy's human win rate against the previous one, next to the reward model's prediction. */
export function WinRatePanel({ rate }: { rate: WinRate | null }) {
  if (!rate) {
    return (
      <p className="muted" data-testid="win-rate-none">
        Not measured yet: annotators compare the new policy with the previous one once the round's batch is
        published.
      </p>
    );
  }
  const judged = finite(rate.win_rate);
  return (
    <div className="win-rate" data-testid="win-rate">
      <dl className="win-rate-numbers">
        <div>
          <dt>Human win rate (new vs previous, 95% CI)</dt>
          <dd className="win-rate-value" data-testid="win-rate-human">
            {formatWinRate(rate)}
          </dd>
          <dd className="muted">
            n = {formatCount(rate.n)} · {formatCount(rate.wins)} wins · {formatCount(rate.ties)} ties
          </dd>
        </div>
        <div>
          <dt>Reward model's predicted win rate</dt>
          <dd className="win-rate-value" data-testid="win-rate-predicted">
            {finite(rate.predicted) ? formatPercent(rate.predicted) : "—"}
          </dd>
          <dd className="muted">on the same pairs</dd>
        </div>
      </dl>
      {judged && <WinRateScale rate={rate} />}
      {!judged && <p className="muted">No pair of this round has been judged yet.</p>}
      {overOptimized(rate) && (
        <p className="notice notice-warning" data-testid="over-optimization">
          The reward model predicts more wins than annotators found (above the 95% CI): the policy may be
          over-optimizing the reward model.
        </p>
      )}
    </div>
  );
}
