import type { KappaMatrix } from "../api";
import { r } from "./chart";
import { formatFixed, kappaColor, kappaTextColor, NOT_ENOUGH_DATA } from "./format";

const LABEL_WIDTH = 100;
const LABEL_HEIGHT = 84;
const MAX_LABEL = 12;
const LEGEND_STOPS = [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1];

function shortName(name: string): string {
  return name.length > MAX_LABEL ? `${name.slice(0, MAX_LABEL - 1)}…` : name;
}

/** "alice × bob: κ = 0.55 (n = 40)"; "κ = not enough data" when undefined. */
export function kappaTitle(a: string, b: string, kappa: number | null | undefined, common: number | undefined): string {
  const value = typeof kappa === "number" && Number.isFinite(kappa) ? formatFixed(kappa) : NOT_ENOUGH_DATA;
  return `${a} × ${b}: κ = ${value} (n = ${common ?? 0})`;
}

/** Annotators × annotators, each cell coloured by Cohen's kappa on a diverging scale (grey: none). */
export function KappaHeatmap({ kappa }: { kappa: KappaMatrix }) {
  const people = kappa.annotators;
  const n = people.length;
  if (n === 0) return <p className="muted">No annotators yet.</p>;

  const cell = Math.max(12, Math.min(40, Math.floor(480 / n)));
  const width = LABEL_WIDTH + n * cell + 4;
  const height = LABEL_HEIGHT + n * cell + 4;
  const showValues = cell >= 30;

  return (
    <figure className="chart heatmap">
      <div className="heatmap-scroll">
        <svg
          className="kappa-heatmap"
          viewBox={`0 0 ${width} ${height}`}
          width={width}
          height={height}
          role="img"
          aria-label="Cohen's kappa heatmap"
        >
          <desc>Pairwise Cohen's kappa between {n} annotators; grey cells have too few common comparisons.</desc>
          {people.map((person, i) => (
            <text
              key={`row-${person.id}`}
              className="heatmap-label heatmap-label-row"
              x={LABEL_WIDTH - 6}
              y={r(LABEL_HEIGHT + (i + 0.5) * cell)}
            >
              {shortName(person.username)}
            </text>
          ))}
          {people.map((person, j) => (
            <text
              key={`col-${person.id}`}
              className="heatmap-label heatmap-label-col"
              transform={`translate(${r(LABEL_WIDTH + (j + 0.5) * cell)} ${LABEL_HEIGHT - 6}) rotate(-45)`}
            >
              {shortName(person.username)}
            </text>
          ))}
          {people.map((rowPerson, i) =>
            people.map((colPerson, j) => {
              const value = kappa.matrix[i]?.[j] ?? null;
              const x = LABEL_WIDTH + j * cell;
              const y = LABEL_HEIGHT + i * cell;
              return (
                <g key={`${rowPerson.id}-${colPerson.id}`} className="kappa-cell-group">
                  <rect
                    className={value === null ? "kappa-cell kappa-cell-null" : "kappa-cell"}
                    x={x}
                    y={y}
                    width={cell}
                    height={cell}
                    fill={kappaColor(value)}
                  >
                    <title>{kappaTitle(rowPerson.username, colPerson.username, value, kappa.common[i]?.[j])}</title>
                  </rect>
                  {showValues && value !== null && (
                    <text
                      className="kappa-value"
                      x={r(x + cell / 2)}
                      y={r(y + cell / 2)}
                      fill={kappaTextColor(value)}
                      aria-hidden="true"
                    >
                      {formatFixed(value)}
                    </text>
                  )}
                </g>
              );
            }),
          )}
        </svg>
      </div>
      <figcaption className="heatmap-legend">
        <span>−1 disagree</span>
        <svg className="heatmap-legend-scale" viewBox={`0 0 ${LEGEND_STOPS.length * 16} 12`} aria-hidden="true">
          {LEGEND_STOPS.map((stop, i) => (
            <rect key={stop} x={i * 16} y={0} width={16} height={12} fill={kappaColor(stop)} />
          ))}
        </svg>
        <span>+1 agree</span>
        <span className="heatmap-legend-null">
          <svg viewBox="0 0 12 12" aria-hidden="true">
            <rect width={12} height={12} fill={kappaColor(null)} />
          </svg>
          too few common comparisons
        </span>
      </figcaption>
    </figure>
  );
}
