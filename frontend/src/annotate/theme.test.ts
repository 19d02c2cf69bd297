// The stylesheet's colour variables, light and dark: every colour has a dark value, and the
// text/background pairs the pages use stay readable (WCAG AA, 4.5:1) in both schemes.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// Read from disk: the test runner does not load stylesheets into modules (and the bundler
// would rewrite `new URL(literal, import.meta.url)`, hence the variable).
const here = import.meta.url;
const css = readFileSync(decodeURIComponent(new URL("../styles.css", here).pathname), "utf8");

/** The body of the block that starts at `open` (the index of its "{"). */
function blockAt(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === "{") depth += 1;
    else if (text[i] === "}") {
      depth -= 1;
      if (depth === 0) return text.slice(open + 1, i);
    }
  }
  throw new Error("unbalanced braces");
}

function block(text: string, selector: string): string {
  const at = text.indexOf(`${selector} {`);
  if (at === -1) throw new Error(`no block ${selector}`);
  return blockAt(text, at + selector.length + 1);
}

function variables(body: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const match of body.matchAll(/(--[\w-]+):\s*([^;]+);/g)) vars.set(match[1]!, match[2]!.trim());
  return vars;
}

const light = variables(block(css, ":root"));
const dark = variables(block(block(css, "@media (prefers-color-scheme: dark)"), ":root"));

function channels(color: string): [number, number, number] {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (!hex) throw new Error(`not a #rrggbb colour: ${color}`);
  const n = parseInt(hex[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function luminance(color: string): number {
  const [r, g, b] = channels(color).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

// [text, background] as the stylesheet combines them.
const PAIRS: [string, string][] = [
  ["--text", "--bg"],
  ["--text", "--surface"],
  ["--text", "--table-head-bg"],
  ["--text", "--subtle-bg"],
  ["--text", "--selected-bg"],
  ["--text", "--choice-hover-bg"],
  ["--text", "--code-bg"],
  ["--text", "--pre-bg"],
  ["--text-soft", "--system-bg"],
  ["--text-soft", "--neutral-soft"],
  ["--muted", "--bg"],
  ["--muted", "--surface"],
  ["--muted", "--table-head-bg"],
  ["--muted", "--neutral-soft"],
  ["--accent", "--surface"],
  ["--accent", "--bg"],
  ["--on-accent", "--accent"],
  ["--on-accent", "--accent-hover"],
  ["--accent-hover", "--accent-soft"],
  ["--error-text", "--error-bg"],
  ["--error-text", "--surface"],
  ["--on-accent", "--error-text"],
  ["--on-accent", "--danger-hover"],
  ["--warning-text", "--warning-bg"],
  ["--warning", "--surface"],
  ["--success-text", "--success-bg"],
  ["--muted-warm-text", "--muted-warm-bg"],
  ["--flag-text", "--flag-bg"],
  ["--flagged-text", "--flagged-bg"],
];

describe("colour scheme", () => {
  it("gives every colour variable a dark-mode value", () => {
    const colours = [...light.keys()].filter((name) => name !== "--radius");
    expect(colours.length).toBeGreaterThan(10);
    expect(colours.filter((name) => !dark.has(name))).toEqual([]);
    expect([...dark.keys()].filter((name) => !light.has(name))).toEqual([]);
    expect(block(block(css, "@media (prefers-color-scheme: dark)"), ":root")).toMatch(/color-scheme:\s*dark/);
  });

  it.each([
    ["light", light],
    ["dark", dark],
  ])("keeps text readable in %s mode (4.5:1)", (_scheme, vars) => {
    const poor = PAIRS.map(([fg, bg]) => [fg, bg, contrast(vars.get(fg)!, vars.get(bg)!)] as const)
      .filter(([, , ratio]) => ratio < 4.5)
      .map(([fg, bg, ratio]) => `${fg} on ${bg}: ${ratio.toFixed(2)}`);
    expect(poor).toEqual([]);
  });

  it("uses no literal colour outside the variables, except in code highlighting", () => {
    const outside = css
      .replace(block(css, ":root"), "")
      .replace(block(css, "@media (prefers-color-scheme: dark)"), "");
    const highlighting = outside.indexOf("/* Code highlighting in dark mode");
    const rest = outside.slice(0, highlighting) + outside.slice(outside.indexOf("}\n}\n", highlighting));
    expect(rest.match(/#[0-9a-f]{3,8}\b|rgba?\(/gi) ?? []).toEqual([]);
  });

  it("hides keyboard hints on touch screens", () => {
    const touch = block(css, "@media (hover: none) and (pointer: coarse), (max-width: 600px)");
    expect(block(touch, ".key-hint")).toMatch(/display:\s*none/);
  });

  it("keeps the decision bar at the bottom of the viewport", () => {
    const controls = block(css, "\n.controls");
    expect(controls).toMatch(/position:\s*sticky/);
    expect(controls).toMatch(/bottom:\s*0/);
  });
});
