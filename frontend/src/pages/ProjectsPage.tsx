import { Loading, LoadError } from "../components/LoadStatus";
import { useState } from "react";
import { Link } from "react-router-dom";
import { request, roleLabel, type Paginated, type Project } from "../api";
import { canCreateProjects } from "../admin/types";
import { useAuth } from "../auth";
import { useProjects } from "../useProjects";

/** Archived projects (hidden from the list above), loaded on demand. */
function ArchivedProjects() {
  const [state, setState] = useState<"hidden" | "loading" | Project[] | string>("hidden");

  async function show() {
    setState("loading");
    try {
      const page = await request<Paginated<Project>>("/api/projects/?archived=only");
      setState(page.results);
    } catch (err) {
      setState(err instanceof Error ? err.message : String(err));
    }
  }

  if (state === "hidden")
    return (
      <p>
        <button type="button" className="link-button" onClick={() => void show()}>
          Show archived projects
        </button>
      </p>
    );
  if (state === "loading") return <Loading what="archived projects" />;
  if (typeof state === "string")
    return (
      <p className="error" role="alert">
        {state}
      </p>
    );
  return (
    <section aria-labelledby="archived-title">
      <h2 id="archived-title">Archived projects</h2>
      {state.length === 0 ? (
        <p className="empty">No archived projects.</p>
      ) : (
        <ul>
          {state.map((project) => (
            <li key={project.id}>
              <Link to={`/projects/${project.id}`}>{project.name}</Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

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
      {state.status === "loaded" && <ArchivedProjects />}
    </main>
  );
}
