import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { LabelScheme, ProjectDetail, QueueItem } from "../api";
import { mockFetch, type MockHandler, type MockRoute, type RecordedCall } from "../test/mockFetch";
import { renderApp } from "../test/renderApp";
import { loadDraft, loadPending } from "./storage";
import { PHONE_QUERY } from "./useMediaQuery";

const user = { id: 7, username: "ann", is_superuser: false, roles: ["annotator"] };

const fullScheme: LabelScheme = { allow_tie: true, allow_both_bad: true, strength_scale: true, rationale_mode: "optional" };

const project: ProjectDetail = {
  id: 3,
  name: "Chat quality",
  description: "Compare two chat replies.",
  instructions: "Prefer the **more helpful** reply.",
  role: "annotator",
  overlap_k: 3,
  lease_ttl_seconds: 600,
  ...fullScheme,
  gold_rate: 0,
  created_at: "2025-01-02T10:00:00Z",
};

const NEXT = "POST /api/projects/3/queue/next/";
const submitKey = (id: number) => `POST /api/projects/3/assignments/${id}/submit/`;
const skipKey = (id: number) => `POST /api/projects/3/assignments/${id}/skip/`;

function item(id: number, scheme: Partial<LabelScheme> = {}, extra: Partial<QueueItem> = {}): QueueItem {
  return {
    assignment_id: id,
    expires_at: new Date(Date.now() + 10 * 60_000).toISOString(),
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: `Question number ${id}?` },
    ],
    left: { content: `Left answer ${id}` },
    right: { content: `Right answer ${id}` },
    scheme: { ...fullScheme, ...scheme },
    ...extra,
  };
}

function judgment(id: number, status = 201): MockRoute {
  return {
    status,
    body: { id: 100 + id, assignment_id: id, choice: "left", strength: null, rationale: "", time_taken_ms: 1, created_at: "2025-01-01T00:00:00Z" },
  };
}

const progress = {
  body: { done_today: 2, done_total: 10, available_to_you: 5, project_comparisons: 20, project_judgments: 30, project_judgments_needed: 60 },
};

/** Answers `next` from a list of items in order: a fake that only cares about the order of calls. */
function nextSequence(...items: (QueueItem | null)[]): MockHandler {
  let n = 0;
  return () => {
    const answer = items[Math.min(n, items.length - 1)] ?? null;
    n += 1;
    return { body: { item: answer } };
  };
}

function routes(extra: Record<string, MockRoute | MockRoute[] | MockHandler>, p: ProjectDetail = project) {
  return {
    "GET /api/auth/me/": { body: user },
    "GET /api/projects/3/": { body: p },
    "GET /api/projects/3/progress/": progress,
    ...extra,
  };
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const nextCalls = (calls: RecordedCall[]) => calls.filter((c) => `${c.method} ${c.path}` === NEXT);
const submitCalls = (calls: RecordedCall[], id: number) => calls.filter((c) => `${c.method} ${c.path}` === submitKey(id));

async function shownItem(id: number): Promise<HTMLElement> {
  return waitFor(() => {
    const el = document.querySelector<HTMLElement>(`[data-assignment-id="${id}"]`);
    if (!el) throw new Error(`item ${id} not shown`);
    return el;
  });
}

function button(name: string): HTMLButtonElement {
  return screen.getByRole("button", { name }) as HTMLButtonElement;
}

beforeEach(() => {
  sessionStorage.clear();
  // jsdom does not scroll; the page calls this for every new item.
  vi.spyOn(window, "scrollTo").mockImplementation(() => undefined);
});

/** Makes the page see a phone-sized screen (jsdom has no matchMedia of its own). */
function onPhone() {
  vi.stubGlobal("matchMedia", (query: string) => ({
    matches: query === PHONE_QUERY,
    media: query,
    onchange: null,
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    addListener: () => undefined,
    removeListener: () => undefined,
    dispatchEvent: () => false,
  }));
}

describe("AnnotatePage", () => {
  it("renders the header, the conversation and the two responses", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11), null) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");

    const root = await shownItem(11);
    expect(await screen.findByRole("heading", { name: "Chat quality" })).toBeTruthy();
    const yours = await screen.findByRole("progressbar", { name: "Your progress" });
    expect(yours.getAttribute("aria-valuetext")).toBe("2 today · 10 done · 5 left for you");

    const prompt = within(root).getByRole("region", { name: "Prompt" });
    expect(within(prompt).getByText("System")).toBeTruthy();
    expect(within(prompt).getByText("You are a helpful assistant.")).toBeTruthy();
    expect(within(prompt).getByText("User")).toBeTruthy();
    expect(within(prompt).getByText("Question number 11?")).toBeTruthy();
    expect(prompt.querySelector(".message-system")).not.toBeNull();

    expect(within(screen.getByRole("region", { name: "Response 1" })).getByText("Left answer 11")).toBeTruthy();
    expect(within(screen.getByRole("region", { name: "Response 2" })).getByText("Right answer 11")).toBeTruthy();

    // Instructions are collapsed until toggled, then rendered as markdown.
    const toggle = button("Instructions");
    expect(toggle.getAttribute("aria-expanded")).toBe("false");
    await u.click(toggle);
    expect(toggle.getAttribute("aria-expanded")).toBe("true");
    expect((await screen.findByText("more helpful")).tagName).toBe("STRONG");
  });

  it("submits with the keyboard: 2, w, Enter", async () => {
    const { calls } = mockFetch(routes({ [NEXT]: nextSequence(item(11), null), [submitKey(11)]: judgment(11) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    expect(button("Submit").disabled).toBe(true);
    await u.keyboard("2");
    expect(button("Right is better").getAttribute("aria-pressed")).toBe("true");
    expect(button("Left is better").getAttribute("aria-pressed")).toBe("false");
    expect(button("Submit").disabled).toBe(true); // strength still missing
    await u.keyboard("w");
    expect(button("Better").getAttribute("aria-pressed")).toBe("true");
    expect(button("Submit").disabled).toBe(false);
    await u.keyboard("{Enter}");

    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(1));
    const body = submitCalls(calls, 11)[0]!.body as Record<string, unknown>;
    expect(body).toEqual({ choice: "right", strength: 3, rationale: "", time_taken_ms: expect.any(Number) });
    expect(body.time_taken_ms as number).toBeGreaterThanOrEqual(0);
    expect(await screen.findByText("All done — nothing left for you in this project.")).toBeTruthy();
    expect(screen.getByTestId("save-status").textContent).toBe("Saved");
  });

  it("ignores shortcuts while typing in the rationale; Ctrl+Enter submits from there", async () => {
    const { calls } = mockFetch(routes({ [NEXT]: nextSequence(item(11), null), [submitKey(11)]: judgment(11) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    const rationale = screen.getByLabelText("Rationale") as HTMLTextAreaElement;
    await u.click(rationale);
    await u.keyboard("1 2 t b s q{Enter}");
    expect(rationale.value).toBe("1 2 t b s q\n");
    for (const name of ["Left is better", "Right is better", "Tie", "Both bad"]) {
      expect(button(name).getAttribute("aria-pressed")).toBe("false");
    }
    expect(screen.queryByRole("form", { name: "Skip this item" })).toBeNull();
    expect(calls.some((c) => c.path.includes("/submit/"))).toBe(false);

    await u.click(button("Left is better"));
    await u.click(button("Slightly"));
    await u.click(rationale);
    await u.keyboard("{Control>}{Enter}{/Control}");

    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(1));
    expect(submitCalls(calls, 11)[0]!.body).toMatchObject({ choice: "left", strength: 2, rationale: "1 2 t b s q" });
  });

  it("prefetches the next item and shows it before the submit response arrives", async () => {
    const held = deferred<MockRoute>();
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: () => held.promise,
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    await waitFor(() => expect(nextCalls(calls)).toHaveLength(2));
    expect(nextCalls(calls)[0]!.body).toEqual({});
    expect(nextCalls(calls)[1]!.body).toEqual({ exclude: [11] });

    await u.click(button("Left is better"));
    await u.click(button("Significantly"));
    await u.click(button("Submit"));

    // The prefetched item is on screen while the submit is still in flight.
    const next = await shownItem(12);
    expect(within(next).getByText("Left answer 12")).toBeTruthy();
    expect(document.querySelector('[data-assignment-id="11"]')).toBeNull();
    expect(submitCalls(calls, 11)).toHaveLength(1);
    expect(submitCalls(calls, 11)[0]!.body).toMatchObject({ choice: "left", strength: 4 });
    expect(screen.getByTestId("save-status").textContent).toBe("Saving…");
    // No `next` while the submit is pending (the server would return the submitted lease).
    expect(nextCalls(calls)).toHaveLength(2);

    held.resolve(judgment(11));
    await waitFor(() => expect(screen.getByTestId("save-status").textContent).toBe("Saved"));
    await waitFor(() => expect(nextCalls(calls)).toHaveLength(3));
    expect(nextCalls(calls)[2]!.body).toEqual({ exclude: [12] });
  });

  it("retries a submit after a network error, posting the same assignment again", async () => {
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: [{ throws: new TypeError("Failed to fetch") }, judgment(11)],
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await waitFor(() => expect(nextCalls(calls)).toHaveLength(2));

    await u.keyboard("1q{Enter}");
    await shownItem(12);
    await waitFor(() => expect(screen.getByTestId("save-status").textContent).toBe("Retrying…"));
    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(2), { timeout: 3000 });
    const [first, second] = submitCalls(calls, 11);
    expect(second!.body).toEqual(first!.body);
    await waitFor(() => expect(screen.getByTestId("save-status").textContent).toBe("Saved"));
    expect(document.querySelector('[data-assignment-id="12"]')).not.toBeNull();
  });

  it("shows the server's message on 409 lease_expired and carries on", async () => {
    const message = "Your lease expired and the comparison was completed by others; take the next item.";
    mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: { status: 409, body: { code: "lease_expired", message, extra: {} } },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    await u.click(button("Tie"));
    await u.click(button("Submit"));

    expect((await screen.findByText(message)).closest('[role="alert"]')).not.toBeNull();
    expect(await shownItem(12)).toBeTruthy();
    expect(screen.getByTestId("save-status").textContent).toBe("Not saved");
    await u.click(button("Dismiss"));
    expect(screen.queryByText(message)).toBeNull();
  });

  it("brings the item back with the error when the server rejects the answer (400)", async () => {
    mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), null),
        [submitKey(11)]: {
          status: 400,
          body: { code: "invalid_judgment", message: "Invalid judgment.", extra: { fields: { rationale: "A rationale is required." } } },
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    await u.click(button("Both bad"));
    await u.click(button("Submit"));

    expect(await screen.findByText(/Invalid judgment\..*A rationale is required\./)).toBeTruthy();
    await shownItem(11);
    expect(button("Both bad").getAttribute("aria-pressed")).toBe("true");
  });

  it("hides tie, both-bad, strength and rationale when the scheme disallows them", async () => {
    const scheme = { allow_tie: false, allow_both_bad: false, strength_scale: false, rationale_mode: "off" as const };
    const { calls } = mockFetch(
      routes({ [NEXT]: nextSequence(item(11, scheme), null), [submitKey(11)]: judgment(11) }, { ...project, ...scheme }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    expect(screen.queryByRole("button", { name: "Tie" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Both bad" })).toBeNull();
    expect(screen.queryByLabelText("Rationale")).toBeNull();
    expect(button("Submit").disabled).toBe(true);

    await u.keyboard("tb");
    expect(button("Submit").disabled).toBe(true);
    await u.keyboard("{ArrowLeft}");
    expect(button("Left is better").getAttribute("aria-pressed")).toBe("true");
    for (const name of ["Significantly", "Better", "Slightly", "Negligibly"]) {
      expect(screen.queryByRole("button", { name })).toBeNull();
    }
    expect(button("Submit").disabled).toBe(false);
    await u.keyboard("{Enter}");

    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(1));
    expect(submitCalls(calls, 11)[0]!.body).toMatchObject({ choice: "left", strength: null, rationale: "" });
  });

  it("keeps Submit disabled until strength and a required rationale are given", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11, { rationale_mode: "required" }), null) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    const rationale = screen.getByLabelText("Rationale") as HTMLTextAreaElement;
    expect(rationale.required).toBe(true);
    expect(screen.queryByRole("button", { name: "Better" })).toBeNull(); // no choice yet

    await u.click(button("Right is better"));
    expect(button("Submit").disabled).toBe(true);
    await u.click(button("Negligibly"));
    expect(button("Negligibly").getAttribute("aria-pressed")).toBe("true");
    expect(button("Submit").disabled).toBe(true);
    await u.type(rationale, "   ");
    expect(button("Submit").disabled).toBe(true);
    await u.type(rationale, "clearer");
    expect(button("Submit").disabled).toBe(false);

    // A tie needs no strength; the strength buttons go away.
    await u.click(button("Tie"));
    expect(screen.queryByRole("button", { name: "Negligibly" })).toBeNull();
    expect(button("Submit").disabled).toBe(false);
  });

  it("skips with an optional reason via the inline form", async () => {
    const { calls } = mockFetch(
      routes({ [NEXT]: nextSequence(item(11), item(12), null), [skipKey(11)]: { status: 204 } }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    await u.keyboard("s");
    const reason = await screen.findByLabelText("Reason for skipping (optional)");
    expect(document.activeElement).toBe(reason);
    await u.keyboard("not my language{Enter}");

    await shownItem(12);
    await waitFor(() => expect(calls.filter((c) => `${c.method} ${c.path}` === skipKey(11))).toHaveLength(1));
    expect(calls.find((c) => c.path.endsWith("/11/skip/"))!.body).toEqual({ reason: "not my language" });

    // The Skip button opens the form too; Cancel closes it.
    await u.click(button("Skip"));
    await u.click(button("Cancel"));
    expect(screen.queryByLabelText("Reason for skipping (optional)")).toBeNull();
  });

  it("says when the current item's lease has expired", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11, {}, { expires_at: "2020-01-01T00:00:00Z" }), null) }));
    renderApp("/projects/3/annotate");
    await shownItem(11);
    expect(
      screen.getByText("This item's lease expired; your answer will be accepted if the comparison still needs it."),
    ).toBeTruthy();
  });

  it("shows the empty-queue message", async () => {
    const { calls } = mockFetch(routes({ [NEXT]: { body: { item: null } } }));
    renderApp("/projects/3/annotate");

    expect(await screen.findByText("All done — nothing left for you in this project.")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Back to your projects" }).getAttribute("href")).toBe("/projects");
    expect(nextCalls(calls)).toHaveLength(1);
    expect(nextCalls(calls)[0]!.body).toEqual({});
  });

  it("shows the error when the queue cannot be loaded", async () => {
    mockFetch(
      routes({
        [NEXT]: {
          status: 403,
          body: { code: "not_an_annotator", message: "Only the project's annotators take items from its queue.", extra: {} },
        },
      }),
    );
    renderApp("/projects/3/annotate");
    expect((await screen.findByRole("alert")).textContent).toBe("Only the project's annotators take items from its queue.");
  });

  it("marks every keyboard hint so touch screens can hide it", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11), null) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await u.keyboard("1"); // the strength buttons (q/w/e/r) show up too

    const hints = [...document.querySelectorAll("kbd")];
    expect(hints.length).toBeGreaterThanOrEqual(11); // 4 choices, 4 strengths, Submit, Skip, Ctrl+Enter
    expect(hints.filter((kbd) => !kbd.closest(".key-hint"))).toEqual([]);
    // Buttons keep their names without the hint.
    expect(button("Left is better").textContent).toContain("Left is better");
    expect(screen.getByLabelText("Rationale").getAttribute("aria-describedby")).toBeTruthy();
  });

  it("keeps a submit refused because the session ended and sends it after logging in again", async () => {
    const notAuthenticated = {
      status: 401,
      body: { code: "not_authenticated", message: "Authentication credentials were not provided.", extra: {} },
    };
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), item(12), item(12), null),
        [submitKey(11)]: [notAuthenticated, judgment(11)],
        "GET /api/auth/csrf/": { body: { csrfToken: "token" } },
        "POST /api/auth/login/": { body: user },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await waitFor(() => expect(nextCalls(calls)).toHaveLength(2));

    await u.keyboard("2e");
    await u.type(screen.getByLabelText("Rationale"), "more precise");
    await u.click(button("Submit"));

    // The judgment is kept and the annotator is asked to log in again.
    const prompt = await screen.findByRole("alert");
    expect(within(prompt).getByRole("heading", { name: "Your session has ended" })).toBeTruthy();
    expect(document.activeElement).toBe(button("Log in again"));
    expect(document.querySelector("[data-assignment-id]")).toBeNull();
    expect(submitCalls(calls, 11)).toHaveLength(1);
    const refused = submitCalls(calls, 11)[0]!.body as Record<string, unknown>;
    expect(refused).toMatchObject({ choice: "right", strength: 2, rationale: "more precise" });
    const kept = loadPending(3, user.id) as { kind: string; entry: { item: QueueItem }; body: unknown }[];
    expect(kept).toHaveLength(1);
    expect(kept[0]!.kind).toBe("submit");
    expect(kept[0]!.entry.item.assignment_id).toBe(11);
    expect(kept[0]!.body).toEqual(refused);
    // No `next` was asked for while signed out.
    expect(nextCalls(calls)).toHaveLength(2);

    await u.click(button("Log in again"));
    await u.type(await screen.findByLabelText("Username"), "ann");
    await u.type(screen.getByLabelText("Password"), "pw");
    await u.click(button("Log in"));

    // Back on the page, the same body goes to the same assignment before anything else.
    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(2));
    expect(submitCalls(calls, 11)[1]!.body).toEqual(refused);
    await shownItem(12);
    // The kept submit went out before the page asked for an item again.
    expect(nextCalls(calls).length).toBeGreaterThanOrEqual(3);
    expect(calls.indexOf(submitCalls(calls, 11)[1]!)).toBeLessThan(calls.indexOf(nextCalls(calls)[2]!));
    await waitFor(() => expect(screen.getByTestId("save-status").textContent).toBe("Saved"));
    expect(loadPending(3, user.id)).toEqual([]);
  });

  it("keeps the answer so far across a reload and forgets it once submitted", async () => {
    let submitted = false;
    const { calls } = mockFetch(
      routes({
        [NEXT]: (call) => {
          const exclude = (call.body as { exclude?: number[] }).exclude;
          return { body: { item: exclude || submitted ? null : item(11) } };
        },
        [submitKey(11)]: () => {
          submitted = true;
          return judgment(11);
        },
      }),
    );
    const u = userEvent.setup();
    const first = renderApp("/projects/3/annotate");
    await shownItem(11);
    await u.click(button("Right is better"));
    await u.click(button("Slightly"));
    await u.type(screen.getByLabelText("Rationale"), "shorter");
    first.unmount();

    renderApp("/projects/3/annotate");
    await shownItem(11);
    expect(button("Right is better").getAttribute("aria-pressed")).toBe("true");
    expect(button("Slightly").getAttribute("aria-pressed")).toBe("true");
    expect((screen.getByLabelText("Rationale") as HTMLTextAreaElement).value).toBe("shorter");
    expect(loadDraft(11)).toEqual({ choice: "right", strength: 2, rationale: "shorter" });

    await u.click(button("Submit"));
    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(1));
    expect(submitCalls(calls, 11)[0]!.body).toMatchObject({ choice: "right", strength: 2, rationale: "shorter" });
    expect(loadDraft(11)).toBeNull();
  });

  it("forgets the draft of a skipped item", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11), item(12), null), [skipKey(11)]: { status: 204 } }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await u.click(button("Tie"));
    expect(loadDraft(11)).toEqual({ choice: "tie", strength: null, rationale: "" });
    await u.click(button("Skip"));
    await u.click(button("Confirm"));
    await shownItem(12);
    expect(loadDraft(11)).toBeNull();
    // The next item starts blank.
    expect(button("Tie").getAttribute("aria-pressed")).toBe("false");
  });

  it("scrolls back to the top when the next item is shown", async () => {
    const held = deferred<MockRoute>();
    const { calls } = mockFetch(
      routes({ [NEXT]: nextSequence(item(11), item(12), null), [submitKey(11)]: () => held.promise }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);
    await waitFor(() => expect(nextCalls(calls)).toHaveLength(2));
    const scrollTo = vi.mocked(window.scrollTo);
    scrollTo.mockClear();

    await u.keyboard("t");
    expect(scrollTo).not.toHaveBeenCalled(); // choosing does not move the page
    await u.keyboard("{Enter}");
    await shownItem(12);
    expect(scrollTo).toHaveBeenCalledTimes(1);
    expect(scrollTo).toHaveBeenCalledWith(0, 0);
    held.resolve(judgment(11));
    await waitFor(() => expect(screen.getByTestId("save-status").textContent).toBe("Saved"));
  });

  it("shows your progress and the project's coverage as progress bars, refreshed after a submit", async () => {
    const after = { ...progress.body, done_today: 3, done_total: 11, available_to_you: 4, project_judgments: 31 };
    const { calls } = mockFetch(
      routes({
        [NEXT]: nextSequence(item(11), null),
        [submitKey(11)]: judgment(11),
        "GET /api/projects/3/progress/": [progress, { body: after }],
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    await shownItem(11);

    const yours = await screen.findByRole("progressbar", { name: "Your progress" });
    expect(yours.getAttribute("aria-valuenow")).toBe("10");
    expect(yours.getAttribute("aria-valuemin")).toBe("0");
    expect(yours.getAttribute("aria-valuemax")).toBe("15");
    expect(yours.getAttribute("aria-valuetext")).toBe("2 today · 10 done · 5 left for you");
    const coverage = screen.getByRole("progressbar", { name: "Project coverage" });
    expect(coverage.getAttribute("aria-valuenow")).toBe("30");
    expect(coverage.getAttribute("aria-valuemax")).toBe("60");
    expect(coverage.getAttribute("aria-valuetext")).toBe("30 of 60 judgments (50%)");
    expect(screen.getByText("30 of 60 judgments (50%)")).toBeTruthy();

    await u.keyboard("b{Enter}");
    await waitFor(() =>
      expect(screen.getByRole("progressbar", { name: "Your progress" }).getAttribute("aria-valuenow")).toBe("11"),
    );
    const refreshed = screen.getByRole("progressbar", { name: "Your progress" });
    expect(refreshed.getAttribute("aria-valuemax")).toBe("15");
    expect(refreshed.getAttribute("aria-valuetext")).toBe("3 today · 11 done · 4 left for you");
    expect(screen.getByRole("progressbar", { name: "Project coverage" }).getAttribute("aria-valuenow")).toBe("31");
    expect(calls.filter((c) => c.path === "/api/projects/3/progress/")).toHaveLength(2);
  });

  it("shows the responses as tabs on a phone, with choices that name the response", async () => {
    onPhone();
    const { calls } = mockFetch(routes({ [NEXT]: nextSequence(item(11), null), [submitKey(11)]: judgment(11) }));
    const u = userEvent.setup();
    renderApp("/projects/3/annotate");
    const root = await shownItem(11);

    const tablist = within(root).getByRole("tablist", { name: "Responses" });
    const [first, second] = within(tablist).getAllByRole("tab");
    expect([first!.textContent, second!.textContent]).toEqual(["Response 1", "Response 2"]);
    expect(first!.getAttribute("aria-selected")).toBe("true");
    expect(second!.getAttribute("aria-selected")).toBe("false");
    const panel = within(root).getByRole("tabpanel", { name: "Response 1" });
    expect(within(panel).getByText("Left answer 11")).toBeTruthy();
    expect(first!.getAttribute("aria-controls")).toBe(panel.id);
    // The other response is in the page but hidden until its tab is chosen.
    expect(within(root).getByText("Right answer 11").closest("[hidden]")).not.toBeNull();

    expect(screen.queryByRole("button", { name: "Left is better" })).toBeNull();
    expect(button("Response 1 is better")).toBeTruthy();
    expect(button("Response 2 is better")).toBeTruthy();

    await u.click(second!);
    expect(second!.getAttribute("aria-selected")).toBe("true");
    expect(within(root).getByRole("tabpanel", { name: "Response 2" })).toBeTruthy();
    expect(within(root).getByText("Left answer 11").closest("[hidden]")).not.toBeNull();

    // Arrow keys move between the tabs without choosing a response.
    await u.keyboard("{ArrowLeft}");
    expect(first!.getAttribute("aria-selected")).toBe("true");
    expect(document.activeElement).toBe(first);
    expect(button("Response 1 is better").getAttribute("aria-pressed")).toBe("false");
    await u.keyboard("{End}");
    expect(second!.getAttribute("aria-selected")).toBe("true");

    await u.click(button("Response 2 is better"));
    expect(second!.textContent).toContain("✓");
    await u.click(button("Better"));
    await u.click(button("Submit"));
    await waitFor(() => expect(submitCalls(calls, 11)).toHaveLength(1));
    expect(submitCalls(calls, 11)[0]!.body).toMatchObject({ choice: "right", strength: 3 });
  });

  it("shows the responses side by side on a wider screen", async () => {
    mockFetch(routes({ [NEXT]: nextSequence(item(11), null) }));
    renderApp("/projects/3/annotate");
    const root = await shownItem(11);
    expect(within(root).queryByRole("tablist")).toBeNull();
    expect(within(root).getByRole("region", { name: "Response 1" })).toBeTruthy();
    expect(within(root).getByRole("region", { name: "Response 2" })).toBeTruthy();
    expect(button("Left is better")).toBeTruthy();
  });
});
