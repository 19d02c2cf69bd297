import { act, render, renderHook, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactNode } from "react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Exclusion, ProjectDetail, QualityReport } from "../api";
import { AuthProvider } from "../auth";
import { mockFetch, type MockHandler, type MockRoute, type RecordedCall } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { alpha, exclusion, qualityData, report } from "../test/qualityFixture";
import { QualityPage } from "./QualityPage";
import { POLL_INTERVAL_MS, useQuality } from "./useQuality";

const admin = { id: 1, username: "root", is_superuser: false, roles: ["project_admin"] };
const annotatorUser = { id: 2, username: "ann", is_superuser: false, roles: ["annotator"] };

const project: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "",
  instructions: "",
  role: "project_admin",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  allow_tie: true,
  allow_both_bad: true,
  strength_scale: true,
  rationale_mode: "optional",
  gold_rate: 0.05,
  created_at: "2025-01-02T10:00:00Z",
};

const QUALITY = "GET /api/projects/3/quality/";
const RECOMPUTE = "POST /api/projects/3/quality/recompute/";
const EXCLUSIONS = "GET /api/projects/3/exclusions/";

type Routes = Record<string, MockRoute | MockRoute[] | MockHandler>;

function routes(extra: Routes = {}): Routes {
  return {
    "GET /api/auth/me/": { body: admin },
    "GET /api/projects/3/": { body: project },
    [QUALITY]: { body: report() },
    [EXCLUSIONS]: { body: { results: [] } },
    ...extra,
  };
}

function renderPage(props: { pollIntervalMs?: number; pollTimeoutMs?: number } = {}) {
  return render(
    <MemoryRouter>
      <AuthProvider>
        <QualityPage projectId={3} {...props} />
      </AuthProvider>
    </MemoryRouter>,
  );
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const count = (calls: RecordedCall[], key: string) => calls.filter((c) => `${c.method} ${c.path}` === key).length;

function card(label: string): HTMLElement {
  return screen.getByText(label, { selector: "dt" }).closest(".summary-card") as HTMLElement;
}

function annotatorRow(username: string): HTMLElement {
  const table = screen.getByRole("table", { name: "Annotators" });
  return within(table).getByRole("rowheader", { name: new RegExp(`^${username}`) }).closest("tr")!;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("QualityPage", () => {
  it("counts judgments undone since the snapshot as a change", async () => {
    mockFetch(routes({ [QUALITY]: { body: report({ stale: true, new_judgments: 3, undone_judgments: 1 }) } }));
    const { unmount } = renderApp("/projects/3/quality");
    expect(await screen.findByText("stale — 3 new judgments, 1 undone since")).toBeTruthy();
    unmount();

    mockFetch(routes({ [QUALITY]: { body: report({ stale: true, new_judgments: 0, undone_judgments: 2 }) } }));
    renderApp("/projects/3/quality");
    expect(await screen.findByText("stale — 2 judgments undone since")).toBeTruthy();
  });

  it("renders the header, summary with alpha and CI, charts, tables and heatmap", async () => {
    mockFetch(routes({ [QUALITY]: { body: report({ stale: true, new_judgments: 37 }) } }));
    renderApp("/projects/3/quality");

    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    expect(await screen.findByText("0.62 [0.58, 0.66]")).toBeTruthy();
    expect(screen.getByText(/^Computed/).textContent).toBe("Computed 5 minutes ago");
    expect(screen.getByText("stale — 37 new judgments")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Recompute now" })).toBeTruthy();

    expect(within(card("Judgments")).getByText("1,234")).toBeTruthy();
    expect(within(card("Coverage")).getByText("82.4%")).toBeTruthy();
    expect(within(card("Annotators")).getByText("4")).toBeTruthy();
    expect(within(card("α nominal")).getByText("0.62 [0.58, 0.66]")).toBeTruthy();
    expect(within(card("α ordinal")).getByText("0.71 [0.67, 0.75]")).toBeTruthy();
    expect(within(card("Percent agreement")).getByText("74.5%")).toBeTruthy();
    expect(within(card("Gold accuracy")).getByText("88%")).toBeTruthy();
    expect(within(card("Median time per judgment")).getByText("15 s")).toBeTruthy();

    expect(screen.getByRole("img", { name: "Agreement over time" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "Throughput" })).toBeTruthy();
    expect(screen.getByRole("img", { name: "Cohen's kappa heatmap" })).toBeTruthy();
    const batches = screen.getByRole("table", { name: "Batches" });
    expect(within(batches).getByText("0.60 [0.55, 0.65]")).toBeTruthy();
    expect(within(batches).getAllByText("not enough data")).toHaveLength(2);
    expect(within(screen.getByRole("table", { name: "Annotators" })).getAllByRole("row")).toHaveLength(5);
    expect(screen.getByText("No annotator has been excluded.")).toBeTruthy();
    expect(document.body.innerHTML).not.toContain("NaN");
  });

  it("shows 'not enough data' when alpha cannot be computed", async () => {
    const data = {
      ...qualityData,
      summary: { ...qualityData.summary, alpha_nominal: alpha(null, null, null, 1), alpha_ordinal: alpha(null, null, null, 0) },
    };
    mockFetch(routes({ [QUALITY]: { body: report({ data }) } }));
    renderApp("/projects/3/quality");

    expect(await screen.findByRole("heading", { name: "Summary" })).toBeTruthy();
    expect(within(card("α nominal")).getByText("not enough data")).toBeTruthy();
    expect(within(card("α ordinal")).getByText("not enough data")).toBeTruthy();
    expect(card("α nominal").textContent).not.toContain("NaN");
  });

  it("tells an annotator that the dashboard is for project admins (403)", async () => {
    mockFetch(
      routes({
        "GET /api/auth/me/": { body: annotatorUser },
        "GET /api/projects/3/": { body: { ...project, role: "annotator" } },
        [QUALITY]: {
          status: 403,
          body: { code: "permission_denied", message: "You do not have the role this project action needs.", extra: {} },
        },
        [EXCLUSIONS]: { status: 403, body: { code: "permission_denied", message: "Nope.", extra: {} } },
      }),
    );
    renderApp("/projects/3/quality");

    expect((await screen.findByRole("alert")).textContent).toBe("You need to be a project admin to see this dashboard.");
    expect(screen.queryByRole("heading", { name: "Summary" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Recompute now" })).toBeNull();
    // Still signed in: no redirect to the login page.
    expect(screen.queryByRole("button", { name: "Log in" })).toBeNull();
  });

  it("shows other errors with a retry", async () => {
    mockFetch(
      routes({
        [QUALITY]: [{ status: 500, body: { code: "server_error", message: "Boom.", extra: {} } }, { body: report() }],
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/quality");

    expect((await screen.findByRole("alert")).textContent).toBe("Boom.");
    await u.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByText("0.62 [0.58, 0.66]")).toBeTruthy();
  });

  it("shows 'No statistics yet', recomputes and polls until computed_at changes", async () => {
    const empty = report({ computed_at: null, data: null });
    const fresh = report({ computed_at: "2025-03-27T12:00:00Z" });
    let gets = 0;
    const post = deferred<MockRoute>();
    const { calls } = mockFetch(
      routes({
        [QUALITY]: () => {
          gets += 1;
          return { body: gets < 4 ? empty : fresh };
        },
        [RECOMPUTE]: () => post.promise,
      }),
    );
    const u = userEvent.setup();
    renderPage({ pollIntervalMs: 5 });

    expect(await screen.findByText("No statistics yet")).toBeTruthy();
    expect(screen.getByText("Never computed")).toBeTruthy();
    await u.click(screen.getByRole("button", { name: "Recompute now" }));

    expect(await screen.findByText("Recomputing…")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Recompute now" }) as HTMLButtonElement).disabled).toBe(true);
    expect(count(calls, RECOMPUTE)).toBe(1);
    post.resolve({ status: 202, body: { task_id: "abc" } });

    expect(await screen.findByText("0.62 [0.58, 0.66]")).toBeTruthy();
    expect(screen.queryByText("Recomputing…")).toBeNull();
    expect(screen.queryByText("No statistics yet")).toBeNull();
    expect(count(calls, RECOMPUTE)).toBe(1);
    expect(count(calls, QUALITY)).toBe(4); // the first load, two unchanged polls, the new numbers
  });

  it("sends the CSRF token with recompute and reports a failed recompute", async () => {
    document.cookie = "csrftoken=tok";
    const { calls } = mockFetch(
      routes({ [RECOMPUTE]: { status: 503, body: { code: "unavailable", message: "The task queue is down.", extra: {} } } }),
    );
    const u = userEvent.setup();
    renderPage({ pollIntervalMs: 5 });

    await u.click(await screen.findByRole("button", { name: "Recompute now" }));
    expect((await screen.findByRole("alert")).textContent).toBe("The task queue is down.");
    expect(calls.find((c) => c.method === "POST")!.headers["x-csrftoken"]).toBe("tok");
    expect(count(calls, QUALITY)).toBe(1);
  });

  it("excludes an annotator with a reason, then restores them", async () => {
    const created: Exclusion = exclusion(21, 12, "bob", { reason: "Clicks at random", created_by: "root" });
    const revoked: Exclusion = {
      ...created,
      active: false,
      revoked_at: "2025-03-28T09:00:00Z",
      revoked_by: "root",
      revoke_reason: "Talked to them",
    };
    let list: Exclusion[] = [];
    const { calls } = mockFetch(
      routes({
        [EXCLUSIONS]: () => ({ body: { results: list } }),
        "POST /api/projects/3/exclusions/": () => {
          list = [created];
          return { status: 201, body: created };
        },
        "POST /api/projects/3/exclusions/21/revoke/": () => {
          list = [revoked];
          return { body: revoked };
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/quality");

    await screen.findByRole("table", { name: "Annotators" });
    await u.click(within(annotatorRow("bob")).getByRole("button", { name: "Exclude" }));
    await u.type(screen.getByLabelText("Reason for excluding bob"), "Clicks at random");
    await u.click(screen.getByRole("button", { name: "Confirm exclusion" }));

    await waitFor(() => expect(within(annotatorRow("bob")).getByText("Excluded")).toBeTruthy());
    const post = calls.find((c) => `${c.method} ${c.path}` === "POST /api/projects/3/exclusions/")!;
    expect(post.body).toEqual({ annotator_id: 12, reason: "Clicks at random" });
    await waitFor(() => expect(count(calls, EXCLUSIONS)).toBe(2)); // refetched after the POST
    const trail = screen.getByRole("list", { name: "Exclusion audit trail" });
    expect(within(trail).getByText("Reason: Clicks at random")).toBeTruthy();
    expect(within(annotatorRow("bob")).queryByRole("button", { name: "Exclude" })).toBeNull();

    await u.click(within(annotatorRow("bob")).getByRole("button", { name: "Restore" }));
    await u.type(screen.getByLabelText("Reason for restoring bob"), "Talked to them");
    await u.click(screen.getByRole("button", { name: "Confirm restore" }));

    await waitFor(() => expect(within(annotatorRow("bob")).queryByText("Excluded")).toBeNull());
    const revoke = calls.find((c) => c.path === "/api/projects/3/exclusions/21/revoke/")!;
    expect(revoke.method).toBe("POST");
    expect(revoke.body).toEqual({ reason: "Talked to them" });
    expect(within(annotatorRow("bob")).getByRole("button", { name: "Exclude" })).toBeTruthy();
    expect(within(trail).getByText("Reason: Talked to them")).toBeTruthy();
    expect(within(trail).getByText("Restored")).toBeTruthy();
  });
});

describe("useQuality polling", () => {
  function wrapper({ children }: { children: ReactNode }) {
    return (
      <MemoryRouter>
        <AuthProvider>{children}</AuthProvider>
      </MemoryRouter>
    );
  }

  it("polls every 2 s and gives up after 60 s", async () => {
    vi.useFakeTimers();
    const unchanged: QualityReport = report({ computed_at: "2025-03-27T12:00:00Z" });
    const { calls } = mockFetch(routes({ [QUALITY]: { body: unchanged }, [RECOMPUTE]: { status: 202, body: { task_id: "t" } } }));
    const { result } = renderHook(() => useQuality(3), { wrapper });
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(result.current.state.status).toBe("loaded");

    act(() => result.current.startRecompute());
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(result.current.recompute.phase).toBe("polling");
    expect(count(calls, QUALITY)).toBe(1);

    await act(() => vi.advanceTimersByTimeAsync(POLL_INTERVAL_MS - 1));
    expect(count(calls, QUALITY)).toBe(1);
    await act(() => vi.advanceTimersByTimeAsync(1));
    expect(count(calls, QUALITY)).toBe(2);

    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(count(calls, QUALITY)).toBe(31); // 30 polls in 60 s
    expect(result.current.recompute.phase).toBe("timeout");
  });
});
