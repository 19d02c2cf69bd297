// Geometry shared by the hand-written SVG charts (no chart library: the SPA runs under a
// strict CSP, and these stay small and testable).

export const CHART_WIDTH = 640;
export const CHART_HEIGHT = 260;
export const MARGIN = { top: 14, right: 16, bottom: 46, left: 56 } as const;
export const PLOT_WIDTH = CHART_WIDTH - MARGIN.left - MARGIN.right;
export const PLOT_HEIGHT = CHART_HEIGHT - MARGIN.top - MARGIN.bottom;

/** The centre of slot `index` of `count` equal slots across the plot. */
export function slotX(index: number, count: number): number {
  return MARGIN.left + ((index + 0.5) * PLOT_WIDTH) / Math.max(1, count);
}

/** A linear map from [min, max] to the plot's vertical range (max at the top). */
export function yScale(min: number, max: number): (value: number) => number {
  const span = max - min || 1;
  return (value) => MARGIN.top + ((max - value) / span) * PLOT_HEIGHT;
}

/** Runs of consecutive indices where `present(i)` holds: the pieces of a line with gaps. */
export function runs(count: number, present: (index: number) => boolean): number[][] {
  const result: number[][] = [];
  let current: number[] = [];
  for (let i = 0; i < count; i += 1) {
    if (present(i)) {
      current.push(i);
    } else if (current.length > 0) {
      result.push(current);
      current = [];
    }
  }
  if (current.length > 0) result.push(current);
  return result;
}

/** Rounds for SVG path data (keeps the markup short and stable). */
export function r(value: number): number {
  return Math.round(value * 10) / 10;
}

/** "M x y L x y …" through the points. */
export function linePath(points: [number, number][]): string {
  return points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${r(x)} ${r(y)}`).join(" ");
}

/**
 * A closed band between an upper and a lower line over the same x positions (upper left to
 * right, then lower right to left). A single position becomes a narrow box `halfWidth` wide.
 */
export function bandPath(xs: number[], upper: number[], lower: number[], halfWidth = 4): string {
  if (xs.length === 1) {
    const x = xs[0]!;
    return `${linePath([
      [x - halfWidth, upper[0]!],
      [x + halfWidth, upper[0]!],
      [x + halfWidth, lower[0]!],
      [x - halfWidth, lower[0]!],
    ])} Z`;
  }
  const top = xs.map((x, i): [number, number] => [x, upper[i]!]);
  const bottom = xs.map((x, i): [number, number] => [x, lower[i]!]).reverse();
  return `${linePath([...top, ...bottom])} Z`;
}
