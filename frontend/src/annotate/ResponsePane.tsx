import { Markdown } from "../components/Markdown";

/** Set when the pane is one of the phone layout's tabs. */
export interface PaneTab {
  panelId: string;
  tabId: string;
  hidden: boolean;
}

/** One of the two responses, rendered as (sanitized) markdown. */
export function ResponsePane({
  label,
  content,
  chosen,
  tab,
}: {
  label: string;
  content: string;
  chosen: boolean;
  tab?: PaneTab;
}) {
  const className = chosen ? "response-pane chosen" : "response-pane";
  const body = content ? <Markdown source={content} /> : <p className="muted">(empty response)</p>;
  if (tab) {
    return (
      <section
        id={tab.panelId}
        role="tabpanel"
        aria-labelledby={tab.tabId}
        hidden={tab.hidden}
        tabIndex={0}
        className={className}
      >
        {body}
      </section>
    );
  }
  return (
    <section aria-label={label} className={className}>
      <h2 className="section-title">{label}</h2>
      {body}
    </section>
  );
}
