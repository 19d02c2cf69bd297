import type { ReactNode } from "react";
import { Link, useInRouterContext } from "react-router-dom";

/** Link from a project page (…/projects/:id/<page>) to one annotator's page; plain text outside a router. */
export function AnnotatorLink({ annotatorId, children }: { annotatorId: number; children: ReactNode }) {
  if (!useInRouterContext()) return <>{children}</>;
  return (
    <Link to={`../annotators/${annotatorId}`} relative="path" className="annotator-link">
      {children}
    </Link>
  );
}
