import { Loading, LoadError } from "../components/LoadStatus";
import { useCallback, useId, useMemo, type ReactNode } from "react";
import { Link } from "react-router-dom";
import { api, type AnnotatorQuality, type Exclusion, type QualityReport } from "../api";
import { useApiErrorHandler } from "../auth";
import { useProject } from "../useProject";
import { AlphaChart } from "./AlphaChart";
import { AnnotatorTable, ThresholdLegend } from "./AnnotatorTable";
import { BatchTable } from "./BatchTable";
import { ExclusionLog } from "./ExclusionLog";
import { formatCount, formatDateTime, formatRelativeTime } from "./format";
import { KappaHeatmap } from "./KappaHeatmap";
import { SummaryCards } from "./SummaryCards";
import { ThroughputChart } from "./ThroughputChart";
import {
  activeExclusions,
  isForbidden,
  useExclusions,
  useNow,
  useQuality,
  type ExclusionsState,
  type RecomputeState,
} from "./useQuality";

export const ADMIN_ONLY_MESSAGE = "You need to be a project admin to see this dashboard.";

function Section({ title, className, children }: { title: string; className?: string; children: ReactNode }) {
  const id = useId();
  return (
    <section className={className ? `quality-section ${className}` : "quality-section"} aria-labelledby={id}>
      <h2 id={id} className="quality-section-title">
        {title}
      </h2>
      {children}
    </section>
  );
}

function RelativeTime({ iso }: { iso: string }) {
  const now = useNow();
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {formatRelativeTime(iso, now)}
    </time>
  );
}

/** What changed since the snapshot: "3 new judgments", "1 judgment undone since" or both. */
function staleReason(newJudgments: number, undoneJudgments: number): string {
  const plural = (n: number) => (n === 1 ? "judgment" : "judgments");
  const fresh = `${formatCount(newJudgments)} new ${plural(newJudgments)}`;
  if (undoneJudgments === 0) return fresh;
  if (newJudgments === 0) return `${formatCount(undoneJudgments)} ${plural(undoneJudgments)} undone since`;
  return `${fresh}, ${formatCount(undoneJudgments)} undone since`;
}

function ComputedLine({ report }: { report: QualityReport }) {
  return (
    <p className="computed-line muted">
      {report.computed_at ? (
        <span>
          Computed <RelativeTime iso={report.computed_at} />
        </span>
      ) : (
        "Never computed"
      )}
      {report.stale && (
        <span className="badge badge-stale">
          stale — {staleReason(report.new_judgments, report.undone_judgments)}
        </span>
      )}
    </p>
  );
}

function RecomputeControl({ recompute, onRecompute }: { recompute: RecomputeState; onRecompute(): void }) {
  const running = recompute.phase === "starting" || recompute.phase === "polling";
  return (
    <div className="recompute">
      <button type="button" className="button" onClick={onRecompute} disabled={running} aria-busy={running}>
        Recompute now
      </button>
      <p className="recompute-status muted" role="status">
        {running && "Recomputing…"}
        {recompute.phase === "timeout" && "Still recomputing; this takes longer than usual. Reload the page in a while."}
      </p>
      {recompute.phase === "error" && (
        <p className="error" role="alert">
          {recompute.error.message}
        </p>
      )}
    </div>
  );
}

function ExclusionsSection({ state }: { state: ExclusionsState }) {
  return (
    <Section title="Exclusion audit trail">
      {state.status === "loading" && <Loading what="exclusions" />}
      {state.status === "error" && (
        <p className="error" role="alert">
          {state.error.message}
        </p>
      )}
      {state.status === "loaded" && <ExclusionLog exclusions={state.exclusions} />}
    </Section>
  );
}

export interface QualityPageProps {
  projectId: number;
  /** Polling after "Recompute now" (defaults: every 2 s for up to 60 s). */
  pollIntervalMs?: number;
  pollTimeoutMs?: number;
}

/** The project admin's quality dashboard: /projects/:projectId/quality (key it by project). */
export function QualityPage({ projectId, pollIntervalMs, pollTimeoutMs }: QualityPageProps) {
  const handleError = useApiErrorHandler();
  const [projectState] = useProject(projectId);
  const { state, recompute, reload, startRecompute } = useQuality(projectId, { pollIntervalMs, pollTimeoutMs });
  const exclusions = useExclusions(projectId);
  const project = projectState.status === "loaded" ? projectState.project : null;
  const { apply: applyExclusion, reload: reloadExclusions } = exclusions;

  const active = useMemo(
    () => (exclusions.state.status === "loaded" ? activeExclusions(exclusions.state.exclusions) : null),
    [exclusions.state],
  );

  const onExclude = useCallback(
    async (annotator: AnnotatorQuality, reason: string) => {
      try {
        applyExclusion(await api.excludeAnnotator(projectId, annotator.annotator_id, reason));
      } catch (err) {
        const error = handleError(err);
        if (error.status === 409) reloadExclusions(); // excluded meanwhile: show it
        throw error;
      }
      reloadExclusions();
    },
    [projectId, handleError, applyExclusion, reloadExclusions],
  );

  const onRestore = useCallback(
    async (exclusion: Exclusion, reason: string) => {
      try {
        applyExclusion(await api.revokeExclusion(projectId, exclusion.id, reason));
      } catch (err) {
        const error = handleError(err);
        if (error.status === 409 || error.status === 404) reloadExclusions();
        throw error;
      }
      reloadExclusions();
    },
    [projectId, handleError, applyExclusion, reloadExclusions],
  );

  const breadcrumb = (
    <p className="breadcrumb">
      <Link to={`/projects/${projectId}`}>← {project ? project.name : "Project"}</Link>
    </p>
  );

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

  const title = <h1>{project ? project.name : "Quality dashboard"}</h1>;

  if (state.status !== "loaded") {
    let body;
    if (state.status === "loading") {
      body = <Loading what="statistics" />;
    } else if (isForbidden(state.error)) {
      body = (
        <div className="card">
          <p className="error" role="alert">
            {ADMIN_ONLY_MESSAGE}
          </p>
          <p className="muted">
            <Link to={`/projects/${projectId}`}>Back to the project</Link>
          </p>
        </div>
      );
    } else {
      body = <LoadError message={state.error.message} onRetry={reload} />;
    }
    return (
      <main className="page page-wide quality-page">
        {breadcrumb}
        <p className="eyebrow">Quality dashboard</p>
        {title}
        {body}
      </main>
    );
  }

  const { report } = state;
  const { data } = report;
  const control = <RecomputeControl recompute={recompute} onRecompute={startRecompute} />;

  return (
    <main className="page page-wide quality-page">
      {breadcrumb}
      <header className="quality-header">
        <div>
          <p className="eyebrow">Quality dashboard</p>
          {title}
          <ComputedLine report={report} />
        </div>
        {data && control}
      </header>

      {!data ? (
        <div className="empty quality-empty">
          <p>No statistics yet</p>
          <p className="muted">Statistics are computed in the background from the judgments so far.</p>
          {control}
        </div>
      ) : (
        <>
          <Section title="Summary">
            <SummaryCards summary={data.summary} />
          </Section>
          <div className="quality-charts">
            <Section title="Agreement over time" className="card">
              <AlphaChart weeks={data.weeks} />
            </Section>
            <Section title="Throughput" className="card">
              <ThroughputChart days={data.throughput} />
            </Section>
          </div>
          <Section title="Batches">
            <BatchTable batches={data.batches} />
          </Section>
          <Section title="Annotators">
            <ThresholdLegend thresholds={data.thresholds} />
            <AnnotatorTable annotators={data.annotators} exclusions={active} onExclude={onExclude} onRestore={onRestore} />
          </Section>
          <Section title="Pairwise agreement (Cohen's kappa)" className="card">
            <KappaHeatmap kappa={data.kappa} />
          </Section>
        </>
      )}
      <ExclusionsSection state={exclusions.state} />
    </main>
  );
}
