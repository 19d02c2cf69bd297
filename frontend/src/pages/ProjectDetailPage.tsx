import { Link, useParams } from "react-router-dom";
import { roleLabel } from "../api";
import { useProjects } from "../useProjects";

// Placeholder: the API has no project detail endpoint yet, so the project is
// looked up in the list. The annotator view replaces this later.
export function ProjectDetailPage() {
  const { projectId } = useParams();
  const [state, reload] = useProjects();
  const id = Number(projectId);

  let content;
  if (state.status === "loading") {
    content = (
      <p className="muted" role="status">
        Loading project…
      </p>
    );
  } else if (state.status === "error") {
    content = (
      <div className="card">
        <p className="error" role="alert">
          {state.error.message}
        </p>
        <button type="button" className="button" onClick={reload}>
          Try again
        </button>
      </div>
    );
  } else {
    const project = Number.isInteger(id) ? state.projects.find((p) => p.id === id) : undefined;
    content = project ? (
      <article className="card">
        <h1>{project.name}</h1>
        <p className="description">{project.description || <span className="muted">No description.</span>}</p>
        <p className="muted">
          Your role: <span className={project.role ? "badge" : "badge badge-none"}>{roleLabel(project.role)}</span>
        </p>
      </article>
    ) : (
      <div className="card">
        <h1>Project not found</h1>
        <p className="muted">This project does not exist or you are not a member of it.</p>
      </div>
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
