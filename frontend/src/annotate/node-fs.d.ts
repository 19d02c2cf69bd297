// The one Node API a test uses (theme.test.ts reads styles.css from disk); the project does not
// depend on @types/node.
declare module "node:fs" {
  export function readFileSync(path: string, encoding: "utf8"): string;
}
