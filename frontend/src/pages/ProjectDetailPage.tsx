import { Loading, LoadError } from "../components/LoadStatus";
import { Link, useParams } from "react-router-dom";
import { roleLabel } from "../api";
import { useAuth } from "../auth";
import { Markdown } from "../components/Markdown";
import { useProject } from "../useProject";
import "../admin/admin.css";

export function ProjectDetailPage() {
  const { projectId } = useParams();
  const id = Number(projectId);
  const [state, reload] = useProject(id);
  const { state: auth } = useAuth();
  const isSuperuser = auth.status === "authenticated" && auth.user.is_superuser;

  let content;
  if (state.status === "loading") {
    content = <Loading what="project" />;
  } else if (state.status === "error" && state.error.status === 404) {
    content = (
      <div className="card">
        <h1>Project not found</h1>
        <p className="muted">This project does not exist or you are not a member of it.</p>
      </div>
    );
  } else if (state.status === "error") {
    content = <LoadError message={state.error.message} onRetry={reload} />;
  } else {
    const { project } = state;
    content = (
      <article className="card project-detail">
        <h1>{project.name}</h1>
        {"archived_at" in project && project.archived_at ? (
          <p className="notice-warning" role="note">
            This project is archived: its queue hands out no new items.
          </p>
        ) : null}
        <p className="description">{project.description || <span className="muted">No description.</span>}</p>
        <p className="muted">
          Your role: <span className={project.role ? "badge" : "badge badge-none"}>{roleLabel(project.role)}</span>
        </p>
        {project.role === "annotator" && (
          <p>
            <Link to={`/projects/${project.id}/annotate`} className="button">
              Start annotating
            </Link>
          </p>
        )}
        {(project.role === "project_admin" || isSuperuser) && (
          <p>
            <Link to={`/projects/${project.id}/quality`} className="button">
              Quality dashboard
            </Link>
          </p>
        )}
        {(project.role === "project_admin" || isSuperuser) && (
          <nav aria-label="Project administration" className="admin-links">
            <Link to={`/projects/${project.id}/settings`} className="button button-secondary">
              Settings
            </Link>
            <Link to={`/projects/${project.id}/members`} className="button button-secondary">
              Members
            </Link>
            <Link to={`/projects/${project.id}/import`} className="button button-secondary">
              Import data
            </Link>
            <Link to={`/projects/${project.id}/data`} className="button button-secondary">
              Browse data
            </Link>
            <Link to={`/projects/${project.id}/ml?tab=exports`} className="button button-secondary">
              Exports
            </Link>
          </nav>
        )}
        {(project.role === "ml_engineer" || isSuperuser) && (
          <p>
            <Link to={`/projects/${project.id}/ml`} className="button">
              ML console
            </Link>
          </p>
        )}
        <section aria-labelledby="project-instructions" className="project-instructions">
          <h2 id="project-instructions">Instructions</h2>
          {project.instructions ? (
            <Markdown source={project.instructions} />
          ) : (
            <p className="muted">No instructions.</p>
          )}
        </section>
      </article>
    );
  }

  return (
    <main className="page">
      <p className="breadcrumb">
        <Link to="/projects">← Your projects</Link>
      </p>
      {content}
    </main>
  );
}
