import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { LabelScheme, ProjectDetail, QueueItem } from "../api";
import { mockFetch, type MockHandler, type MockRoute, type RecordedCall } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { UndoButton } from "./UndoButton";

const user = { id: 7, username: "ann", is_superuser: false, roles: ["annotator"] };
const scheme: LabelScheme = { allow_tie: true, allow_both_bad: true, strength_scale: true, rationale_mode: "optional" };
const project: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "",
  instructions: "",
  role: "annotator",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  ...scheme,
  gold_rate: 0,
  created_at: "2025-01-02T10:00:00Z",
};

const NEXT = "POST /api/projects/3/queue/next/";
const submitKey = (id: number) => `POST /api/projects/3/assignments/${id}/submit/`;
const undoKey = (id: number) => `POST /api/projects/3/assignments/${id}/undo/`;

function item(id: number): QueueItem {
  return {
    assignment_id: id,
    expires_at: new Date(Date.now() + 10 * 60_000).toISOString(),
    messages: [{ role: "user", content: `Question number ${id}?` }],
    left: { content: `Left answer ${id}` },
    right: { content: `Right answer ${id}` },
    scheme,
  };
}

function judgment(id: number): MockRoute {
  return {
    status: 201,
    body: { id: 100 + id, assignment_id: id, choice: "left", strength: 3, rationale: "", time_taken_ms: 1, created_at: "2025-01-01T00:00:00Z" },
  };
}

function nextSequence(...items: (QueueItem | null)[]): MockHandler {
  let n = 0;
  return () => {
    const answer = items[Math.min(n, items.length - 1)] ?? null;
    n += 1;
    return { body: { item: answer } };
  };
}

function routes(extra: Record<string, MockRoute | MockRoute[] | MockHandler>) {
  return {
    "GET /api/auth/me/": { body: user },
    "GET /api/projects/3/": { body: project },
    "GET /api/projects/3/progress/": {
      body: { done_today: 0, done_total: 0, available_to_you: 5, project_comparisons: 5, project_judgments: 0, project_judgments_needed: 15 },
    },
    ...extra,
  };
}

async function shownItem(id: number): Promise<HTMLElement> {
  return waitFor(() => {
    const el = document.querySelector<HTMLElement>(`[data-assignment-id="${id}"]`);
    if (!el) throw new Error(`item ${id} not shown`);
    return el;
  });
}

const calledWith = (calls: RecordedCall[], key: string) => calls.filter((c) => `${c.method} ${c.path}` === key);
const pressed = (name: string) => screen.getByRole("button", { name }).getAttribute("aria-pressed");

beforeEach(() => {
  sessionStorage.clear();
  vi.spyOn(window, "scrollTo").mockImplementation(() => undefined);
});

describe("undo on the annotate page", () => {
  it("shows the judged item again with the answer preselected, and resubmits it", async () => {
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: [judgment(11), judgment(11)],
        [undoKey(11)]: { body: { item: item(11), draft: { choice: "left", strength: 3, rationale: "clearer" }, revision_id: 5 } },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    expect(screen.queryByRole("button", { name: /Undo/ })).toBeNull(); // nothing judged yet

    await u.keyboard("1w{Enter}");
    await shownItem(12);
    const undo = await screen.findByRole("button", { name: /Undo last answer/ });
    await u.click(undo);

    await waitFor(() => expect(calledWith(calls, undoKey(11))).toHaveLength(1));
    await shownItem(11);
    expect(pressed("Left is better")).toBe("true");
    expect(pressed("Better")).toBe("true");
    expect((screen.getByLabelText("Rationale") as HTMLTextAreaElement).value).toBe("clearer");
    expect(screen.queryByRole("button", { name: /Undo/ })).toBeNull(); // one undo per judgment

    // change the answer and submit again; the item shown before the undo comes back next
    await u.keyboard("2r{Enter}");
    await shownItem(12);
    await waitFor(() => expect(calledWith(calls, submitKey(11))).toHaveLength(2));
    expect(calledWith(calls, submitKey(11))[1]!.body).toMatchObject({ choice: "right", strength: 1, rationale: "clearer" });
  });

  it("undoes with the u key, but not while typing", async () => {
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: judgment(11),
        [undoKey(11)]: { body: { item: item(11), draft: { choice: "tie", strength: null, rationale: "" }, revision_id: 5 } },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await u.keyboard("1w{Enter}");
    await shownItem(12);
    await screen.findByRole("button", { name: /Undo last answer/ });

    await u.click(screen.getByLabelText("Rationale"));
    await u.keyboard("u");
    expect(calledWith(calls, undoKey(11))).toHaveLength(0);
    (document.activeElement as HTMLElement).blur();
    await u.keyboard("u");
    await shownItem(11);
    expect(calledWith(calls, undoKey(11))).toHaveLength(1);
    expect(pressed("Tie")).toBe("true");
  });

  it("says why an undo was refused and hides the button", async () => {
    mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: judgment(11),
        [undoKey(11)]: {
          status: 409,
          body: { code: "comparison_complete", message: "This comparison already has all its judgments; its votes are final.", extra: {} },
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await u.keyboard("1w{Enter}");
    await shownItem(12);
    await u.click(await screen.findByRole("button", { name: /Undo last answer/ }));
    expect(await screen.findByText(/Could not undo: This comparison already has all its judgments/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Undo/ })).toBeNull();
    expect(document.querySelector('[data-assignment-id="12"]')).not.toBeNull();
  });
});

describe("UndoButton", () => {
  it("is shown for the window only", () => {
    vi.useFakeTimers();
    try {
      const start = Date.now();
      const state = { undoable: { assignmentId: 1, until: start + 120_000 }, undoing: false, pending: 0 };
      render(<UndoButton state={state} onUndo={() => undefined} />);
      expect(screen.getByRole("button", { name: /Undo last answer/ })).toBeTruthy();
      act(() => vi.advanceTimersByTime(119_000));
      expect(screen.queryByRole("button", { name: /Undo last answer/ })).not.toBeNull();
      act(() => vi.advanceTimersByTime(1_001));
      expect(screen.queryByRole("button", { name: /Undo last answer/ })).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("is hidden while another answer is being sent", () => {
    const state = { undoable: { assignmentId: 1, until: Date.now() + 60_000 }, undoing: false, pending: 1 };
    render(<UndoButton state={state} onUndo={() => undefined} />);
    expect(screen.queryByRole("button", { name: /Undo/ })).toBeNull();
  });
});
