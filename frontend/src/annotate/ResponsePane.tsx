import { Markdown } from "../components/Markdown";

/** One of the two responses, rendered as (sanitized) markdown. */
export function ResponsePane({ label, content, chosen }: { label: string; content: string; chosen: boolean }) {
  return (
    <section aria-label={label} className={chosen ? "response-pane chosen" : "response-pane"}>
      <h2 className="section-title">{label}</h2>
      {content ? <Markdown source={content} /> : <p className="muted">(empty response)</p>}
    </section>
  );
}
