import { Navigate, Outlet, Route, Routes, useLocation, useParams } from "react-router-dom";
import { InviteAcceptPage } from "./admin/InviteAcceptPage";
import { MembersPage } from "./admin/MembersPage";
import { NewProjectPage } from "./admin/NewProjectPage";
import { ProjectSettingsPage } from "./admin/ProjectSettingsPage";
import { AnnotatePage } from "./annotate/AnnotatePage";
import { AnnotatorPage } from "./annotators/AnnotatorPage";
import { AuthProvider, useAuth } from "./auth";
import { ComparisonPage, DataBrowserPage } from "./browse/DataBrowserPage";
import { TopBar } from "./components/TopBar";
import { MlConsolePage } from "./console/MlConsolePage";
import { ImportPage } from "./imports/ImportPage";
import { LoginPage } from "./pages/LoginPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { ProjectDetailPage } from "./pages/ProjectDetailPage";
import { ProjectsPage } from "./pages/ProjectsPage";
import { TokensPage } from "./pages/TokensPage";
import { QualityPage } from "./quality/QualityPage";

function FullPageStatus() {
  const { state, refresh } = useAuth();
  if (state.status === "error") {
    return (
      <main className="page page-narrow">
        <div className="card">
          <h1>Something went wrong</h1>
          <p className="error" role="alert">
            {state.error.message}
          </p>
          <button type="button" className="button" onClick={refresh}>
            Try again
          </button>
        </div>
      </main>
    );
  }
  return (
    <main className="page page-narrow">
      <p className="muted" role="status">
        Loading…
      </p>
    </main>
  );
}

/** Layout for every signed-in page: top bar + the page. */
function RequireAuth() {
  const { state } = useAuth();
  const location = useLocation();
  if (state.status === "anonymous") {
    return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  }
  if (state.status !== "authenticated") return <FullPageStatus />;
  return (
    <>
      <TopBar user={state.user} />
      <Outlet />
    </>
  );
}

/** A fresh annotate page (and queue) per project id. */
function AnnotateRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <AnnotatePage key={id} projectId={id} />;
}

/** The project admin's quality dashboard, fresh per project id. */
function QualityRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <QualityPage key={id} projectId={id} />;
}

/** The ML engineer's console (rounds, runs, models, exports), fresh per project id. */
function MlConsoleRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <MlConsolePage key={id} projectId={id} />;
}

/** One annotator's page for the project's admins, fresh per project and user id. */
function AnnotatorRoute() {
  const { projectId, userId } = useParams();
  const id = Number(projectId);
  const user = Number(userId);
  if (!Number.isInteger(id) || id <= 0 || !Number.isInteger(user) || user <= 0) return <NotFoundPage />;
  return <AnnotatorPage key={`${id}-${user}`} projectId={id} userId={user} />;
}

/** A project admin's import page (upload, progress, bad lines, past imports), fresh per id. */
function ImportRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <ImportPage key={id} projectId={id} />;
}

/** A project's data browser (prompts, comparisons, judgments), fresh per project id. */
function DataBrowserRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <DataBrowserPage key={id} projectId={id} />;
}

/** One comparison with its history, linkable. */
function ComparisonRoute() {
  const { projectId, comparisonId } = useParams();
  const id = Number(projectId);
  const cid = Number(comparisonId);
  if (!Number.isInteger(id) || id <= 0 || !Number.isInteger(cid) || cid <= 0) return <NotFoundPage />;
  return <ComparisonPage key={`${id}-${cid}`} projectId={id} comparisonId={cid} />;
}

/** A project admin's settings page, fresh per project id. */
function ProjectSettingsRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <ProjectSettingsPage key={id} projectId={id} />;
}

/** A project admin's members and invite links, fresh per project id. */
function MembersRoute() {
  const { projectId } = useParams();
  const id = Number(projectId);
  if (!Number.isInteger(id) || id <= 0) return <NotFoundPage />;
  return <MembersPage key={id} projectId={id} />;
}

/** An invite link: open to anyone holding it (signed in or not). */
function InviteRoute() {
  const { token } = useParams();
  if (!token) return <NotFoundPage />;
  return <InviteAcceptPage key={token} token={token} />;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/invites/:token" element={<InviteRoute />} />
      <Route element={<RequireAuth />}>
        <Route index element={<ProjectsPage />} />
        <Route path="/projects" element={<ProjectsPage />} />
        <Route path="/projects/:projectId" element={<ProjectDetailPage />} />
        <Route path="/projects/:projectId/annotate" element={<AnnotateRoute />} />
        <Route path="/projects/:projectId/quality" element={<QualityRoute />} />
        <Route path="/projects/:projectId/ml" element={<MlConsoleRoute />} />
        <Route path="/projects/:projectId/annotators/:userId" element={<AnnotatorRoute />} />
        <Route path="/projects/:projectId/import" element={<ImportRoute />} />
        <Route path="/projects/:projectId/data" element={<DataBrowserRoute />} />
        <Route path="/projects/:projectId/data/comparisons/:comparisonId" element={<ComparisonRoute />} />
        <Route path="/account/tokens" element={<TokensPage />} />
        <Route path="/projects/new" element={<NewProjectPage />} />
        <Route path="/projects/:projectId/settings" element={<ProjectSettingsRoute />} />
        <Route path="/projects/:projectId/members" element={<MembersRoute />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}

/** The whole app, minus the router (main.tsx uses BrowserRouter, tests MemoryRouter). */
export function App() {
  return (
    <AuthProvider>
      <AppRoutes />
    </AuthProvider>
  );
}
