import { useMemo } from "react";
import { renderMarkdown } from "../annotate/markdown";

/** Untrusted markdown, rendered and sanitized (see annotate/markdown.ts). */
export function Markdown({ source, className }: { source: string; className?: string }) {
  const html = useMemo(() => renderMarkdown(source), [source]);
  return <div className={className ? `markdown ${className}` : "markdown"} dangerouslySetInnerHTML={{ __html: html }} />;
}
