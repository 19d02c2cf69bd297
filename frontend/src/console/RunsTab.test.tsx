import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mockFetch, type MockHandler, type MockRoute, type RecordedCall } from "../test/mockFetch";
import { renderApp, settle } from "../test/renderApp";
import { consoleRoutes, run } from "./testData";
import type { MetricRow } from "./types";

type Routes = Record<string, MockRoute | MockRoute[] | MockHandler>;

const RUNS = "GET /api/projects/3/training-runs/";
const RUN = "GET /api/projects/3/training-runs/12/";
const METRICS = "/api/projects/3/training-runs/12/metrics/";

function row(step: number, values: Record<string, unknown>): MetricRow {
  return { step, values, created_at: "2025-03-21T10:00:00Z" };
}

const full = (step: number, reward: number) =>
  row(step, {
    learning_rate: 1e-5,
    loss: 1 / step,
    kl: 0.01 * step,
    kl_coef: 0.2,
    reward,
    entropy: 2.3,
    value_loss: 0.5,
    eval_accuracy: 0.6,
    accuracy: 0.55,
    epoch: step / 10,
    note: "not a number",
  });

function routes(extra: Routes = {}): Routes {
  return {
    ...consoleRoutes,
    [RUNS]: {
      body: {
        results: [
          run(11, { kind: "reward", status: "succeeded", progress: 1, attempts: 2 }),
          run(12, { kind: "ppo", status: "running", progress: 0.4 }),
        ],
      },
    },
    ...extra,
  };
}

const metricPaths = (calls: RecordedCall[]) => calls.filter((c) => c.path.startsWith(METRICS)).map((c) => c.path.slice(METRICS.length));

afterEach(() => {
  vi.useRealTimers();
});

describe("RunsTab", () => {
  it("lists runs with kind, status, progress and attempts", async () => {
    mockFetch(routes());
    renderApp("/projects/3/ml?tab=runs");

    const table = await screen.findByRole("table", { name: "Training runs" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    const [, newest, older] = rows;
    expect(within(newest!).getByRole("link", { name: "Run #12" }).getAttribute("href")).toBe("/projects/3/ml?tab=runs&run=12");
    expect(within(newest!).getByText("ppo")).toBeTruthy();
    expect(within(newest!).getByText("running")).toBeTruthy();
    const progress = within(newest!).getByRole("progressbar", { name: "Progress of run 12" }) as HTMLProgressElement;
    expect(progress.value).toBe(0.4);
    expect(within(newest!).getByText("40%")).toBeTruthy();
    expect(within(older!).getByText("reward")).toBeTruthy();
    expect(within(older!).getByText("2")).toBeTruthy();
    expect(screen.getByText("Select a run to see its metrics.")).toBeTruthy();
    expect(screen.getByRole("tab", { name: "Training runs" }).getAttribute("aria-selected")).toBe("true");
  });

  it("plots each metric and appends the rows after the last step while the run is running", async () => {
    vi.useFakeTimers();
    const { calls } = mockFetch(
      routes({
        [RUN]: [
          { body: run(12, { status: "running", progress: 0.4 }) },
          { body: run(12, { status: "running", progress: 0.7 }) },
          { body: run(12, { status: "succeeded", progress: 1, metrics: { reward: 0.9 }, finished_at: "2025-03-21T10:05:00Z" }) },
        ],
        [`GET ${METRICS}`]: { body: { results: [full(1, 0.1), full(2, 0.3)] } },
        [`GET ${METRICS}?after=2`]: { body: { results: [full(3, 0.5)] } },
        [`GET ${METRICS}?after=3`]: { body: { results: [full(4, 0.9)] } },
      }),
    );
    renderApp("/projects/3/ml?tab=runs&run=12");
    await settle();

    const detail = screen.getByTestId("run-detail");
    expect(within(detail).getByRole("heading", { name: "Run #12 · ppo" })).toBeTruthy();
    const charts = () => screen.getAllByTestId("metric-chart");
    // At most 8, reward/kl/loss/accuracy (and their relatives) first; non-numbers ignored.
    expect(charts().map((c) => c.getAttribute("data-metric"))).toEqual([
      "reward",
      "kl",
      "kl_coef",
      "loss",
      "value_loss",
      "accuracy",
      "eval_accuracy",
      "entropy",
    ]);
    const reward = () => charts()[0]!;
    expect(within(reward()).getByRole("img", { name: "reward by step" })).toBeTruthy();
    expect(within(reward()).getByTestId("metric-last").textContent).toBe("0.3");
    expect(reward().querySelector("path.metric-line")!.getAttribute("d")!.split("L")).toHaveLength(2);
    expect(metricPaths(calls)).toEqual([""]);
    expect(screen.getByText(/Live: 2 logged steps/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Cancel run" })).toBeTruthy();

    await act(() => vi.advanceTimersByTimeAsync(2000));
    expect(metricPaths(calls)).toEqual(["", "?after=2"]);
    expect(within(reward()).getByTestId("metric-last").textContent).toBe("0.5");
    expect(reward().querySelector("path.metric-line")!.getAttribute("d")!.split("L")).toHaveLength(3);

    await act(() => vi.advanceTimersByTimeAsync(2000));
    expect(metricPaths(calls)).toEqual(["", "?after=2", "?after=3"]);
    expect(within(reward()).getByTestId("metric-last").textContent).toBe("0.9");
    expect(reward().querySelector("path.metric-line")!.getAttribute("d")!.split("L")).toHaveLength(4);
    expect(within(screen.getByTestId("run-detail")).getByText("succeeded")).toBeTruthy();
    // The list row follows the detail.
    expect(within(screen.getByTestId("run-row-12")).getByText("succeeded")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Cancel run" })).toBeNull();

    // Finished: no more polling.
    await act(() => vi.advanceTimersByTimeAsync(20_000));
    expect(calls.filter((c) => c.path === RUN.slice(4))).toHaveLength(3);
    expect(metricPaths(calls)).toHaveLength(3);
    expect(document.body.innerHTML).not.toContain("NaN");
  });

  it("shows the error and config of a failed run, and cancels a running one", async () => {
    document.cookie = "csrftoken=tok";
    // Like the server: once the cancel is posted, the run reads back as cancel-requested
    // (the poll that the cancel restarts must not bring the old state back).
    let cancelRequested = false;
    const { calls } = mockFetch(
      routes({
        "GET /api/projects/3/training-runs/11/": {
          body: run(11, {
            kind: "reward",
            status: "failed",
            error: "CUDA out of memory",
            launcher: "accelerate",
            launcher_options: { num_processes: 2, config: "zero2" },
          }),
        },
        "GET /api/projects/3/training-runs/11/metrics/": { body: { results: [] } },
        [RUN]: () => ({ body: run(12, { cancel_requested: cancelRequested }) }),
        [`GET ${METRICS}`]: { body: { results: [] } },
        "POST /api/projects/3/training-runs/12/cancel/": () => {
          cancelRequested = true;
          return { body: run(12, { cancel_requested: true }) };
        },
      }),
    );
    const u = userEvent.setup();
    renderApp("/projects/3/ml?tab=runs&run=11");

    expect((await screen.findByTestId("run-error")).textContent).toBe("CUDA out of memory");
    expect(screen.getByTestId("run-launcher").textContent).toBe("accelerate (num_processes 2, config zero2)");
    expect(screen.getByText("No metrics logged yet.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Cancel run" })).toBeNull();
    const config = screen.getByText("Config").closest("details")!;
    expect(config.open).toBe(false);
    expect(JSON.parse(config.querySelector("pre")!.textContent!)).toEqual({ steps: 20, learning_rate: 1e-5 });

    await u.click(screen.getByRole("link", { name: "Run #12" }));
    await u.click(await screen.findByRole("button", { name: "Cancel run" }));
    expect(screen.getByTestId("run-launcher").textContent).toBe("inprocess");
    await waitFor(() => expect((screen.getByRole("button", { name: "Cancelling…" }) as HTMLButtonElement).disabled).toBe(true));
    const post = calls.find((c) => c.method === "POST")!;
    expect(post.path).toBe("/api/projects/3/training-runs/12/cancel/");
    // The cancel restarts the poll; the run it reads back keeps the button disabled.
    // (the metrics request follows the run's, once the run read back has been applied)
    await waitFor(() => expect(calls.slice(calls.indexOf(post)).some((c) => c.path.startsWith(METRICS))).toBe(true));
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)));
    expect((screen.getByRole("button", { name: "Cancelling…" }) as HTMLButtonElement).disabled).toBe(true);
    expect(post.headers["x-csrftoken"]).toBe("tok");
  });
});
