import { Loading, LoadError } from "../components/LoadStatus";
import { Link } from "react-router-dom";
import { roleLabel } from "../api";
import { canCreateProjects } from "../admin/types";
import { useAuth } from "../auth";
import { useProjects } from "../useProjects";

export function ProjectsPage() {
  const [state, reload] = useProjects();
  const { state: auth } = useAuth();
  const mayCreate = auth.status === "authenticated" && canCreateProjects(auth.user);

  return (
    <main className="page">
      <h1>Your projects</h1>
      {mayCreate && (
        <p>
          <Link to="/projects/new" className="button">
            New project
          </Link>
        </p>
      )}
      {state.status === "loading" && <Loading what="projects" />}
      {state.status === "error" && <LoadError message={state.error.message} onRetry={reload} />}
      {state.status === "loaded" && state.projects.length === 0 && (
        <p className="empty">You are not a member of any project yet.</p>
      )}
      {state.status === "loaded" && state.projects.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Description</th>
                <th scope="col">Role</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {state.projects.map((project) => (
                <tr key={project.id}>
                  <td>
                    <Link to={`/projects/${project.id}`}>{project.name}</Link>
                  </td>
                  <td className="description">{project.description || <span className="muted">—</span>}</td>
                  <td>
                    <span className={project.role ? "badge" : "badge badge-none"}>{roleLabel(project.role)}</span>
                  </td>
                  <td className="actions">
                    {project.role === "annotator" && (
                      <Link
                        to={`/projects/${project.id}/annotate`}
                        className="button button-small"
                        aria-label={`Annotate ${project.name}`}
                      >
                        Annotate
                      </Link>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
