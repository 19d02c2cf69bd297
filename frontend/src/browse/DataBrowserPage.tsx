import { useCallback, useRef, useState, type KeyboardEvent } from "react";
import { Link } from "react-router-dom";
import { Loading, LoadError } from "../components/LoadStatus";
import { isForbidden, useLoad } from "../console/useLoad";
import { browseApi, type RowsOf } from "./browseApi";
import { ComparisonTable, JudgmentTable, PromptTable } from "./BrowseTables";
import { ComparisonDetail } from "./ComparisonDetail";
import { FilterForm } from "./FilterForm";
import { emptyFilters, FILTER_FIELDS } from "./filterFields";
import type { BrowsePage, BrowseTab, Filters } from "./types";

const TABS: { id: BrowseTab; label: string }[] = [
  { id: "prompts", label: "Prompts" },
  { id: "comparisons", label: "Comparisons" },
  { id: "judgments", label: "Judgments" },
];

function Tabs({ current, onSelect }: { current: BrowseTab; onSelect: (tab: BrowseTab) => void }) {
  const refs = useRef<Partial<Record<BrowseTab, HTMLButtonElement | null>>>({});
  function onKeyDown(event: KeyboardEvent) {
    const index = TABS.findIndex((t) => t.id === current);
    let next: number | null = null;
    if (event.key === "ArrowRight") next = (index + 1) % TABS.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + TABS.length) % TABS.length;
    if (next === null) return;
    event.preventDefault();
    const tab = TABS[next]!.id;
    onSelect(tab);
    refs.current[tab]?.focus();
  }
  return (
    <div className="console-tabs" role="tablist" aria-label="Data" onKeyDown={onKeyDown}>
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
            id={`data-tab-${tab.id}`}
            aria-selected={selected}
            aria-controls="data-panel"
            tabIndex={selected ? 0 : -1}
            className={selected ? "console-tab-button console-tab-selected" : "console-tab-button"}
            onClick={() => onSelect(tab.id)}
          >
            {tab.label}
          </button>
        );
      })}
    </div>
  );
}

/**
 * A project's data for its admins: prompts, comparisons and judgments, filtered and paged
 * by the server's cursors. "Previous page" walks back a stack of the cursors that led here.
 */
export function DataBrowserPage({ projectId }: { projectId: number }) {
  const [tab, setTab] = useState<BrowseTab>("comparisons");
  const [filters, setFilters] = useState(emptyFilters);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [open, setOpen] = useState<number | null>(null);

  function selectTab(next: BrowseTab) {
    setTab(next);
    setCursors([null]);
    setOpen(null);
  }

  function apply(next: Filters) {
    setFilters((all) => ({ ...all, [tab]: next }));
    setCursors([null]);
  }

  function showComparisonsOf(promptId: number) {
    setFilters((all) => ({ ...all, comparisons: { ...emptyFilters().comparisons, prompt: String(promptId) } }));
    selectTab("comparisons");
  }

  return (
    <main className="page data-browser">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}`}>← Project</Link>
      </p>
      <h1>Data</h1>
      <Tabs current={tab} onSelect={selectTab} />
      <section id="data-panel" role="tabpanel" aria-labelledby={`data-tab-${tab}`}>
        {open !== null ? (
          <>
            <p>
              <button type="button" className="button button-secondary" onClick={() => setOpen(null)}>
                ← Back to the list
              </button>
            </p>
            <ComparisonDetail key={open} projectId={projectId} comparisonId={open} />
          </>
        ) : (
          <>
            <FilterForm key={`filters-${tab}`} fields={FILTER_FIELDS[tab]} applied={filters[tab]} onApply={apply} />
            <ListPanel
              key={`list-${tab}`}
              projectId={projectId}
              tab={tab}
              filters={filters[tab]}
              cursors={cursors}
              onNext={(cursor) => setCursors((stack) => [...stack, cursor])}
              onPrevious={() => setCursors((stack) => (stack.length > 1 ? stack.slice(0, -1) : stack))}
              onOpen={setOpen}
              onShowComparisons={showComparisonsOf}
            />
          </>
        )}
      </section>
    </main>
  );
}

function ListPanel({
  projectId,
  tab,
  filters,
  cursors,
  onNext,
  onPrevious,
  onOpen,
  onShowComparisons,
}: {
  projectId: number;
  tab: BrowseTab;
  filters: Filters;
  cursors: (string | null)[];
  onNext: (cursor: string) => void;
  onPrevious: () => void;
  onOpen: (comparisonId: number) => void;
  onShowComparisons: (promptId: number) => void;
}) {
  const cursor = cursors[cursors.length - 1] ?? null;
  const load = useCallback(
    (signal: AbortSignal) => browseApi.list(projectId, tab, filters, cursor, signal),
    [projectId, tab, filters, cursor],
  );
  const { state, reload } = useLoad<BrowsePage<RowsOf[BrowseTab]>>(load);

  if (state.status === "loading") return <Loading what={tab} />;
  if (state.status === "error") {
    if (isForbidden(state.error)) {
      return (
        <div className="card">
          <p role="alert">The data browser is for the project's admins and ML engineers.</p>
        </div>
      );
    }
    if (state.error.status === 400) {
      return (
        <div className="card">
          <p className="error" role="alert">
            {state.error.message}
          </p>
        </div>
      );
    }
    return <LoadError message={state.error.message} onRetry={reload} />;
  }
  const page = state.data;
  let table;
  if (tab === "prompts") {
    table = <PromptTable rows={page.results as RowsOf["prompts"][]} onShowComparisons={onShowComparisons} />;
  } else if (tab === "comparisons") {
    table = <ComparisonTable rows={page.results as RowsOf["comparisons"][]} onOpen={onOpen} />;
  } else {
    table = <JudgmentTable projectId={projectId} rows={page.results as RowsOf["judgments"][]} onOpen={onOpen} />;
  }
  return (
    <>
      {table}
      <nav aria-label="Pages" style={{ display: "flex", gap: "0.75rem", alignItems: "center", marginTop: "1rem" }}>
        <button type="button" className="button" disabled={cursors.length <= 1} onClick={onPrevious}>
          Previous page
        </button>
        <span className="muted">Page {cursors.length}</span>
        <button
          type="button"
          className="button"
          disabled={page.next_cursor === null}
          onClick={() => page.next_cursor && onNext(page.next_cursor)}
        >
          Next page
        </button>
      </nav>
    </>
  );
}

/** A comparison on its own page (a link from elsewhere). */
export function ComparisonPage({ projectId, comparisonId }: { projectId: number; comparisonId: number }) {
  return (
    <main className="page data-browser">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}/data`}>← Data</Link>
      </p>
      <ComparisonDetail projectId={projectId} comparisonId={comparisonId} />
    </main>
  );
}
