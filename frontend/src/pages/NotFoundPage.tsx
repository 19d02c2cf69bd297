import { Link } from "react-router-dom";

export function NotFoundPage() {
  return (
    <main className="page">
      <h1>Page not found</h1>
      <p className="muted">
        There is nothing at this address. <Link to="/projects">Go to your projects</Link>.
      </p>
    </main>
  );
}
