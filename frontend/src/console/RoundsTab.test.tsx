import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockFetch, type MockHandler, type MockRoute, type RecordedCall } from "../test/mockFetch";
import { renderApp, settle } from "../test/renderApp";
import { artifact, consoleRoutes, defaultConfig, finishedRound, round, steps } from "./testData";
import type { Round } from "./types";

type Routes = Record<string, MockRoute | MockRoute[] | MockHandler>;

const ROUNDS = "GET /api/projects/3/rounds/";
const DEFAULTS = "GET /api/projects/3/rounds/defaults/";
const START = "POST /api/projects/3/rounds/";

function routes(extra: Routes = {}): Routes {
  return {
    ...consoleRoutes,
    [ROUNDS]: { body: { results: [round(1, { status: "succeeded", step: "published" }), finishedRound] } },
    "GET /api/projects/3/rounds/2/": { body: finishedRound },
    "GET /api/projects/3/rounds/1/": { body: round(1, { status: "succeeded", step: "published" }) },
    [DEFAULTS]: { body: { base_policy: 22, config: defaultConfig } },
    "GET /api/projects/3/artifacts/": {
      body: { results: [artifact(1, { name: "tiny-gpt2" }), artifact(21, { kind: "reward" }), artifact(22, { name: "policy-round-2" })] },
    },
    ...extra,
  };
}

const count = (calls: RecordedCall[], key: string) => calls.filter((c) => `${c.method} ${c.path}` === key).length;

afterEach(() => {
  vi.useRealTimers();
});

describe("RoundsTab", () => {
  it("lists rounds and shows the newest one's step timeline and win rate next to the prediction", async () => {
    mockFetch(routes());
    renderApp("/projects/3/ml");

    const table = await screen.findByRole("table", { name: "Rounds" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3); // header + 2 rounds, newest first
    expect(within(rows[1]!).getByRole("link", { name: "Round 2" }).getAttribute("aria-current")).toBe("true");
    expect(within(rows[1]!).getByText("62.5% [54%, 70%]")).toBeTruthy();
    expect(within(rows[1]!).getByText("succeeded")).toBeTruthy();

    const detail = await screen.findByTestId("round-detail");
    expect(within(detail).getByRole("heading", { name: "Round 2" })).toBeTruthy();
    const timeline = within(detail).getByRole("list", { name: "Steps of round 2" });
    const items = within(timeline).getAllByRole("listitem");
    expect(items.map((li) => li.querySelector(".round-step-name")!.textContent)).toEqual([
      "Collect",
      "Export",
      "Reward",
      "Policy",
      "Generate",
      "Published",
    ]);
    for (const item of items) expect(within(item).getByText("done")).toBeTruthy();
    const collect = screen.getByTestId("round-step-collect");
    expect(within(collect).getByText("420")).toBeTruthy();
    expect(collect.textContent).toContain("(5 s)");

    // Links to the export, runs and models the steps made.
    const reward = screen.getByTestId("round-step-reward");
    expect(within(reward).getByRole("link", { name: "Run #11" }).getAttribute("href")).toBe("/projects/3/ml?tab=runs&run=11");
    expect(within(reward).getByRole("link", { name: "Model #21" }).getAttribute("href")).toBe("/projects/3/ml?tab=models&model=21");
    expect(within(reward).getByText("0.71")).toBeTruthy();
    expect(
      within(screen.getByTestId("round-step-export")).getByRole("link", { name: "Export #7" }).getAttribute("href"),
    ).toBe("/projects/3/ml?tab=exports&export=7");
    expect(within(screen.getByTestId("round-step-published")).getByText("Batch #9")).toBeTruthy();

    // Human win rate vs the reward model's prediction.
    expect(screen.getByTestId("win-rate-human").textContent).toBe("62.5% [54%, 70%]");
    expect(screen.getByTestId("win-rate-predicted").textContent).toBe("86%");
    expect(screen.getByText(/n = 120 · 70 wins · 10 ties/)).toBeTruthy();
    expect(screen.getByTestId("over-optimization")).toBeTruthy();
    expect(screen.getByRole("img", { name: "Win rate scale" }).querySelector("path.win-rate-predicted")).toBeTruthy();

    // Finished: no actions, no polling.
    expect(screen.queryByRole("button", { name: "Cancel round" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Retry round" })).toBeNull();
    expect(document.body.innerHTML).not.toContain("NaN");
  });

  it("selects a round from the list and says when the win rate is not measured yet", async () => {
    mockFetch(routes());
    const u = userEvent.setup();
    renderApp("/projects/3/ml");
    await screen.findByTestId("round-detail");
    await u.click(screen.getByRole("link", { name: "Round 1" }));
    expect(await screen.findByRole("heading", { name: "Round 1" })).toBeTruthy();
    expect(screen.getByTestId("win-rate-none")).toBeTruthy();
    expect(within(screen.getByTestId("round-step-collect")).getByText("pending")).toBeTruthy();
  });

  it("starts a round with the edited config, shows a 400's field errors, then selects the new round", async () => {
    document.cookie = "csrftoken=tok";
    const created = round(3, { status: "queued" });
    const { calls } = mockFetch(
      routes({
        [START]: [
          {
            status: 400,
            body: {
              code: "invalid_config",
              message: "policy: steps must be an integer ≥ 1",
              extra: { fields: { policy: "steps must be an integer ≥ 1", min_judgments: "must be an integer ≥ 0" } },
            },
          },
          { status: 201, body: created },
        ],
        "GET /api/projects/3/rounds/3/": { body: round(3, { status: "running", steps: steps({ collect: { status: "running" } }) }) },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/ml");
    await screen.findByTestId("round-detail");

    await u.click(screen.getByRole("button", { name: "Start a round" }));
    const form = await screen.findByTestId("start-round-form");
    expect(screen.queryByRole("button", { name: "Start a round" })).toBeNull();
    // Defaults from the defaults endpoint.
    expect((screen.getByLabelText("Algorithm") as HTMLSelectElement).value).toBe("ppo");
    expect((screen.getByLabelText("Base policy") as HTMLSelectElement).value).toBe("22");
    const policyOptions = within(screen.getByLabelText("Base policy")).getAllByRole("option").map((o) => o.textContent);
    expect(policyOptions).toEqual(["Default (the last published round's policy)", "tiny-gpt2 (#1)", "policy-round-2 (#22)"]);
    expect((screen.getByLabelText("Accumulate feedback") as HTMLInputElement).checked).toBe(false);
    expect(JSON.parse((screen.getByLabelText("Policy config (JSON)") as HTMLTextAreaElement).value)).toEqual({ steps: 20 });

    await u.selectOptions(screen.getByLabelText("Algorithm"), "dpo");
    await u.selectOptions(screen.getByLabelText("Base policy"), "1");
    await u.click(screen.getByLabelText("Accumulate feedback"));
    fireEvent.change(screen.getByLabelText("Policy config (JSON)"), { target: { value: '{"steps": 0, "beta": 0.1}' } });
    await u.click(within(form).getByRole("button", { name: "Start" }));

    const alert = await screen.findByRole("alert");
    expect(within(alert).getByText("policy: steps must be an integer ≥ 1")).toBeTruthy();
    expect(within(alert).getByText("Min judgments: must be an integer ≥ 0")).toBeTruthy();
    const policy = screen.getByLabelText("Policy config (JSON)");
    expect(policy.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(policy.getAttribute("aria-describedby")!)!.textContent).toBe("steps must be an integer ≥ 1");
    expect((form.querySelector("details") as HTMLDetailsElement).open).toBe(true);

    const post = calls.find((c) => `${c.method} ${c.path}` === START)!;
    expect(post.headers["x-csrftoken"]).toBe("tok");
    expect(post.body).toEqual({
      base_policy: 1,
      config: { ...defaultConfig, algorithm: "dpo", accumulate: true, policy: { steps: 0, beta: 0.1 } },
    });

    fireEvent.change(policy, { target: { value: '{"steps": 5}' } });
    await u.click(within(form).getByRole("button", { name: "Start" }));

    // The new round is selected and its timeline shown.
    expect(await screen.findByRole("heading", { name: "Round 3" })).toBeTruthy();
    expect(screen.queryByTestId("start-round-form")).toBeNull();
    await waitFor(() => expect(screen.getByTestId("round-step-collect").getAttribute("data-status")).toBe("running"));
    expect(within(screen.getByTestId("round-steps")).getAllByRole("listitem")).toHaveLength(6);
    expect(within(screen.getByRole("table", { name: "Rounds" })).getByRole("link", { name: "Round 3" }).getAttribute("aria-current")).toBe(
      "true",
    );
    expect(screen.getByRole("button", { name: "Cancel round" })).toBeTruthy();
    expect(count(calls, START)).toBe(2);
    expect(calls.filter((c) => c.method === "POST")[1]!.body).toMatchObject({ config: { policy: { steps: 5 } } });
  });

  it("refuses bad JSON in an advanced textarea without posting", async () => {
    const { calls } = mockFetch(routes());
    const u = userEvent.setup();
    renderApp("/projects/3/ml");
    await screen.findByTestId("round-detail");
    await u.click(screen.getByRole("button", { name: "Start a round" }));
    await screen.findByTestId("start-round-form");

    fireEvent.change(screen.getByLabelText("Reward config (JSON)"), { target: { value: '{"epochs": 2,' } });
    fireEvent.change(screen.getByLabelText("Generation config (JSON)"), { target: { value: "[1, 2]" } });
    await u.click(screen.getByRole("button", { name: "Start" }));

    expect(screen.getByTestId("json-error").textContent).toBe("Fix the JSON of reward config, generation config before starting.");
    const reward = screen.getByLabelText("Reward config (JSON)");
    expect(reward.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(reward.getAttribute("aria-describedby")!)!.textContent).toMatch(/^Reward config is not valid JSON/);
    const generation = screen.getByLabelText("Generation config (JSON)");
    expect(document.getElementById(generation.getAttribute("aria-describedby")!)!.textContent).toBe(
      "Generation config must be a JSON object ({ … }).",
    );
    await waitFor(() => expect(document.activeElement).toBe(reward));
    expect(count(calls, START)).toBe(0);

    // Fixing it clears the message for that field.
    fireEvent.change(reward, { target: { value: '{"epochs": 2}' } });
    expect(reward.getAttribute("aria-invalid")).toBeNull();
  });

  it("polls the selected round every 2 s while it runs and stops when it finishes", async () => {
    vi.useFakeTimers();
    const running = round(4, { status: "running", step: "reward", steps: steps({ collect: { status: "done" }, export: { status: "done" }, reward: { status: "running" } }) });
    const done: Round = { ...finishedRound, id: 4, number: 4 };
    const { calls } = mockFetch(
      routes({
        [ROUNDS]: { body: { results: [running] } },
        "GET /api/projects/3/rounds/4/": [{ body: running }, { body: running }, { body: done }],
      }),
    );
    const { unmount } = renderApp("/projects/3/ml?tab=rounds&round=4");
    const ROUND = "GET /api/projects/3/rounds/4/";

    await settle();
    expect(count(calls, ROUND)).toBe(1);
    expect(screen.getByTestId("round-step-reward").getAttribute("data-status")).toBe("running");
    expect(screen.getByText(/Updating every 2 s/)).toBeTruthy();

    await act(() => vi.advanceTimersByTimeAsync(1999));
    expect(count(calls, ROUND)).toBe(1);
    await act(() => vi.advanceTimersByTimeAsync(1));
    expect(count(calls, ROUND)).toBe(2);
    await act(() => vi.advanceTimersByTimeAsync(2000));
    expect(count(calls, ROUND)).toBe(3);

    // Finished: the timeline and the list row show it, and polling has stopped.
    expect(screen.getByTestId("round-step-published").getAttribute("data-status")).toBe("done");
    expect(within(screen.getByTestId("round-row-4")).getByText("succeeded")).toBeTruthy();
    expect(screen.queryByText(/Updating every/)).toBeNull();
    await act(() => vi.advanceTimersByTimeAsync(20_000));
    expect(count(calls, ROUND)).toBe(3);
    unmount();
  });

  it("stops polling when the page goes away", async () => {
    vi.useFakeTimers();
    const running = round(4, { status: "running" });
    const { calls } = mockFetch(
      routes({ [ROUNDS]: { body: { results: [running] } }, "GET /api/projects/3/rounds/4/": { body: running } }),
    );
    const { unmount } = renderApp("/projects/3/ml");
    await settle();
    expect(count(calls, "GET /api/projects/3/rounds/4/")).toBe(1);
    await act(() => vi.advanceTimersByTimeAsync(2000));
    const before = count(calls, "GET /api/projects/3/rounds/4/");
    expect(before).toBe(2);
    unmount();
    await act(() => vi.advanceTimersByTimeAsync(10_000));
    expect(count(calls, "GET /api/projects/3/rounds/4/")).toBe(before);
  });

  it("shows a failed round's error, retries it and cancels a running one", async () => {
    const failed = round(5, {
      status: "failed",
      step: "reward",
      error: "run 11 failed: CUDA out of memory",
      steps: steps({ collect: { status: "done" }, export: { status: "done" }, reward: { status: "failed", detail: { run_id: 11, error: "CUDA out of memory" } } }),
    });
    const retried = round(5, { status: "running", step: "reward" });
    const cancelled = round(5, { status: "cancelled", step: "reward", steps: steps({ reward: { status: "cancelled" } }) });
    const { calls } = mockFetch(
      routes({
        [ROUNDS]: { body: { results: [failed] } },
        "GET /api/projects/3/rounds/5/": [{ body: failed }, { body: retried }, { body: cancelled }],
        "POST /api/projects/3/rounds/5/retry/": { body: retried },
        "POST /api/projects/3/rounds/5/cancel/": { body: cancelled },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/ml");

    expect((await screen.findByTestId("round-error")).textContent).toBe("run 11 failed: CUDA out of memory");
    expect(within(screen.getByTestId("round-step-reward")).getByText("CUDA out of memory")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Cancel round" })).toBeNull();
    await u.click(screen.getByRole("button", { name: "Retry round" }));

    await u.click(await screen.findByRole("button", { name: "Cancel round" }));
    await waitFor(() => expect(within(screen.getByTestId("round-detail")).getByText("cancelled", { selector: ".console-detail-meta .badge" })).toBeTruthy());
    expect(calls.filter((c) => c.method === "POST").map((c) => c.path)).toEqual([
      "/api/projects/3/rounds/5/retry/",
      "/api/projects/3/rounds/5/cancel/",
    ]);
  });

  it("shows the gate that stopped a round and publishes anyway with a reason", async () => {
    const gate = {
      gate: "reward_accuracy",
      value: 0.48,
      threshold: 0.55,
      passed: false,
      reason: "the reward model's held-out accuracy is 0.48, below 0.55",
    };
    const stopped = round(6, {
      status: "failed",
      step: "reward",
      error: "Train a reward model: stopped by gate reward_accuracy",
      steps: steps({ collect: { status: "done" }, export: { status: "done" }, reward: { status: "failed", detail: { gates: [gate] } } }),
    });
    const override = { gates: ["reward_accuracy"], reason: "pilot data, checked", by: "mlee", at: "2026-11-30T09:00:00Z" };
    const resumed = round(6, {
      status: "running",
      step: "policy",
      steps: steps({ reward: { status: "done", detail: { overridden: ["reward_accuracy"], overrides: [override] } } }),
    });
    const { calls } = mockFetch(
      routes({
        [ROUNDS]: { body: { results: [stopped] } },
        "GET /api/projects/3/rounds/6/": [{ body: stopped }, { body: resumed }],
        "POST /api/projects/3/rounds/6/override/": { body: resumed },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/ml");

    const verdict = await screen.findByTestId("gate-reward_accuracy");
    expect(verdict.textContent).toContain("Reward model near chance");
    expect(verdict.textContent).toContain("measured 0.480, threshold 0.550");
    const publish = screen.getByRole("button", { name: "Publish anyway" });
    expect((publish as HTMLButtonElement).disabled).toBe(true); // a reason is required
    await u.type(screen.getByLabelText("Why may this round go on?"), "pilot data, checked");
    await u.click(publish);
    await waitFor(() => expect(screen.getByLabelText("Overridden gates").textContent).toContain("overridden by mlee"));
    const post = calls.find((c) => c.method === "POST");
    expect(post?.path).toBe("/api/projects/3/rounds/6/override/");
    expect(post?.body).toEqual({ reason: "pilot data, checked" });
    expect(screen.queryByTestId("gate-reward_accuracy")).toBeNull();
  });

  it("tells other roles that the console is for ML engineers (403)", async () => {
    const denied = { status: 403, body: { code: "permission_denied", message: "Nope.", extra: {} } };
    mockFetch(routes({ [ROUNDS]: denied }));
    renderApp("/projects/3/ml");
    expect((await screen.findByRole("alert")).textContent).toBe("You need to be an ML engineer of this project to use the ML console.");
    expect(screen.queryByRole("button", { name: "Start a round" })).toBeNull();
  });
});
