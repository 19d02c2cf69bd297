import { useEffect, useId, useRef, useState } from "react";
import { Link } from "react-router-dom";
import { Markdown } from "../components/Markdown";
import { useAuth } from "../auth";
import { useProject } from "../useProject";
import { ComparisonItem } from "./ComparisonItem";
import { ProgressBars } from "./ProgressBars";
import { UndoButton } from "./UndoButton";
import { useProgress } from "./useProgress";
import { useQueue, type Notice, type SaveStatus } from "./useQueue";

const SAVE_LABELS: Record<SaveStatus, string> = {
  idle: "",
  saving: "Saving…",
  retrying: "Retrying…",
  saved: "Saved",
  failed: "Not saved",
};

function SaveIndicator({ status }: { status: SaveStatus }) {
  return (
    <p className={`save-status save-status-${status}`} data-testid="save-status" role="status" aria-live="polite">
      {SAVE_LABELS[status]}
    </p>
  );
}

function InstructionsPanel({ instructions }: { instructions: string }) {
  const [open, setOpen] = useState(false);
  const panelId = useId();
  return (
    <div className="instructions">
      <button
        type="button"
        className="button button-secondary"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((o) => !o)}
      >
        <span aria-hidden="true">{open ? "▾ " : "▸ "}</span>
        Instructions
      </button>
      <div id={panelId} className="instructions-panel card" hidden={!open}>
        {open && <Markdown source={instructions} />}
      </div>
    </div>
  );
}

function Notices({ notices, onDismiss }: { notices: Notice[]; onDismiss(id: number): void }) {
  if (notices.length === 0) return null;
  return (
    <div className="notices">
      {notices.map((notice) => (
        <div key={notice.id} className={`notice notice-${notice.tone}`} role="alert">
          <span>{notice.message}</span>
          <button type="button" className="notice-dismiss" onClick={() => onDismiss(notice.id)}>
            Dismiss
          </button>
        </div>
      ))}
    </div>
  );
}

/** Shown instead of the item when a submit was refused because the session ended. */
function SignedOutPrompt() {
  const { sessionExpired } = useAuth();
  const loginButton = useRef<HTMLButtonElement>(null);
  // The item (and the control that had focus) is gone: bring focus to what to do next.
  useEffect(() => loginButton.current?.focus(), []);
  return (
    <div className="card signed-out" role="alert">
      <h2>Your session has ended</h2>
      <p>
        Your last answer was not lost: it is kept in this tab and will be sent as soon as you log in again. Then you
        carry on where you left off.
      </p>
      <button ref={loginButton} type="button" className="button" onClick={sessionExpired}>
        Log in again
      </button>
    </div>
  );
}

/** The annotator's comparison page: /projects/:projectId/annotate (key it by project). */
export function AnnotatePage({ projectId }: { projectId: number }) {
  const [projectState] = useProject(projectId);
  const { state, session } = useQueue(projectId);
  const progress = useProgress(projectId, state.completed);
  const project = projectState.status === "loaded" ? projectState.project : null;

  // Each new item starts at the top of the page, not where the previous one was scrolled to.
  const currentId = state.current?.item.assignment_id ?? null;
  useEffect(() => {
    if (currentId !== null) window.scrollTo(0, 0);
  }, [currentId]);

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

  let body;
  if (state.signedOut) {
    body = <SignedOutPrompt />;
  } else if (state.phase === "ready" && state.current) {
    const { item, draft } = state.current;
    body = (
      <ComparisonItem
        key={item.assignment_id}
        item={item}
        draft={draft}
        onSubmit={(answer, submit) => session.submit(item.assignment_id, answer, submit)}
        onSkip={(reason) => session.skip(item.assignment_id, reason)}
      />
    );
  } else if (state.phase === "empty") {
    body = (
      <div className="empty">
        <p>All done — nothing left for you in this project.</p>
        <p>
          <Link to="/projects">Back to your projects</Link>
          {" · "}
          <button type="button" className="link-button" onClick={() => session.retry()}>
            Check again
          </button>
        </p>
      </div>
    );
  } else if (state.phase === "error" && state.error) {
    body = (
      <div className="card">
        <p className="error" role="alert">
          {state.error.message}
        </p>
        <button type="button" className="button" onClick={() => session.retry()}>
          Try again
        </button>
      </div>
    );
  } else {
    body = (
      <p className="muted" role="status">
        {state.pending > 0 ? "Saving your answer…" : "Loading the next item…"}
      </p>
    );
  }

  return (
    <main className="page page-wide annotate-page">
      <p className="breadcrumb">
        <Link to={`/projects/${projectId}`}>← {project ? project.name : "Project"}</Link>
      </p>
      <header className="annotate-header">
        <div>
          <h1>{project ? project.name : "Annotate"}</h1>
          {progress ? <ProgressBars progress={progress} /> : <p className="progress muted">{"\u00a0"}</p>}
        </div>
        <div className="annotate-header-actions">
          <UndoButton state={state} onUndo={() => void session.undo()} />
          <SaveIndicator status={state.save} />
        </div>
      </header>
      {project?.instructions && <InstructionsPanel instructions={project.instructions} />}
      <Notices notices={state.notices} onDismiss={(id) => session.dismissNotice(id)} />
      {body}
    </main>
  );
}
