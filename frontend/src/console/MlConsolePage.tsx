import { useRef, type KeyboardEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { useProject } from "../useProject";
import { parseTab, TABS, type ConsoleTab } from "./common";
import { ExportsTab } from "./ExportsTab";
import { ModelsTab } from "./ModelsTab";
import { RoundsTab } from "./RoundsTab";
import { RunsTab } from "./RunsTab";

export interface MlConsolePageProps {
  projectId: number;
  /** Polling of active rounds, runs and exports (default every 2 s). */
  pollIntervalMs?: number;
}

function Tabs({ current, onSelect }: { current: ConsoleTab; onSelect(tab: ConsoleTab): void }) {
  const refs = useRef<Partial<Record<ConsoleTab, HTMLButtonElement | null>>>({});

  function onKeyDown(event: KeyboardEvent) {
    const index = TABS.findIndex((t) => t.id === current);
    let next: number | null = null;
    if (event.key === "ArrowRight") next = (index + 1) % TABS.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + TABS.length) % TABS.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = TABS.length - 1;
    if (next === null) return;
    event.preventDefault();
    const tab = TABS[next]!.id;
    onSelect(tab);
    refs.current[tab]?.focus();
  }

  return (
    <div className="console-tabs" role="tablist" aria-label="ML console sections" onKeyDown={onKeyDown}>
      {TABS.map((tab) => {
        const selected = tab.id === current;
        return (
          <button
            key={tab.id}
            ref={(el) => {
              refs.current[tab.id] = el;
            }}
            type="button"
            role="tab"
            id={`ml-tab-${tab.id}`}
            aria-selected={selected}
            aria-controls={`ml-panel-${tab.id}`}
            tabIndex={selected ? 0 : -1}
            className={selected ? "console-tab-button console-tab-selected" : "console-tab-button"}
            data-testid={`ml-tab-${tab.id}`}
            onClick={() => onSelect(tab.id)}
          >
            {tab.label}
          </button>
        );
      })}
    </div>
  );
}

/** The ML engineer's console: /projects/:projectId/ml (key it by project). */
export function MlConsolePage({ projectId, pollIntervalMs }: MlConsolePageProps) {
  const [projectState] = useProject(projectId);
  const [params, setParams] = useSearchParams();
  const tab = parseTab(params.get("tab"));
  const project = projectState.status === "loaded" ? projectState.project : null;

  if (projectState.status === "error" && projectState.error.status === 404) {
    return (
      <main className="page">
        <p className="breadcrumb">
          <Link to="/projects">← Your projects</Link>
        </p>
        <div className="card">
          <h1>Project not found</h1>
          <p className="muted">This project does not exist or you are not a member of it.</p>
        </div>
      </main>
    );
  }

  const selectTab = (next: ConsoleTab) => {
    if (next !== tab) setParams({ tab: next });
  };

  let panel;
  if (tab === "rounds") panel = <RoundsTab projectId={projectId} pollIntervalMs={pollIntervalMs} />;
  else if (tab === "runs") panel = <RunsTab projectId={projectId} pollIntervalMs={pollIntervalMs} />;
  else if (tab === "models") panel = <ModelsTab projectId={projectId} />;
  else panel = <ExportsTab projectId={projectId} pollIntervalMs={pollIntervalMs} />;

  return (
    <main className="page page-wide ml-console" data-testid="ml-console">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}`}>← {project ? project.name : "Project"}</Link>
      </p>
      <p className="eyebrow">ML console</p>
      <h1>{project ? project.name : "ML console"}</h1>
      <Tabs current={tab} onSelect={selectTab} />
      <div
        className="console-panel"
        role="tabpanel"
        id={`ml-panel-${tab}`}
        aria-labelledby={`ml-tab-${tab}`}
        data-testid={`ml-panel-${tab}`}
      >
        {panel}
      </div>
    </main>
  );
}
