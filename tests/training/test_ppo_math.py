"""The arithmetic of PPO on hand-made tensors: GAE against a plain reference loop, the clipped
losses, the KL estimators, the KL controllers' response and the running reward moments."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from training.ml.ppo_math import (
    AdaptiveKLController,
    FixedKLController,
    RunningMoments,
    entropy_from_logits,
    explained_variance,
    gae,
    kl_per_token,
    masked_mean,
    masked_whiten,
    policy_loss,
    shaped_rewards,
    value_loss,
)


def reference_gae(
    rewards: list[float], values: list[float], gamma: float, lam: float
) -> tuple[list[float], list[float]]:
    """Textbook GAE for one episode of len(rewards) steps, V after the end = 0."""
    n = len(rewards)
    advantages = [0.0] * n
    last = 0.0
    for t in reversed(range(n)):
        next_value = values[t + 1] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lam * last
        advantages[t] = last
    return advantages, [a + v for a, v in zip(advantages, values, strict=True)]


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.5, 0.0)])
def test_gae_matches_the_reference_loop_on_ragged_episodes(gamma: float, lam: float) -> None:
    rng = random.Random(7)
    lengths = [5, 1, 3, 5]
    width = max(lengths)
    rewards = torch.zeros(len(lengths), width)
    values = torch.zeros(len(lengths), width)
    mask = torch.zeros(len(lengths), width)
    for i, n in enumerate(lengths):
        for t in range(width):  # garbage beyond the end must not leak in
            rewards[i, t] = rng.uniform(-2, 2)
            values[i, t] = rng.uniform(-2, 2)
        mask[i, :n] = 1
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    for i, n in enumerate(lengths):
        want_adv, want_ret = reference_gae(
            rewards[i, :n].tolist(), values[i, :n].tolist(), gamma, lam
        )
        assert advantages[i, :n].tolist() == pytest.approx(want_adv, abs=1e-5)
        assert returns[i, :n].tolist() == pytest.approx(want_ret, abs=1e-5)
        assert advantages[i, n:].abs().sum() == 0
        assert returns[i, n:].abs().sum() == 0


def test_gae_with_lambda_one_and_no_discount_is_the_return_minus_the_value() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.5, 0.7]])
    advantages, returns = gae(rewards, values, torch.ones(1, 3), 1.0, 1.0)
    assert advantages.tolist()[0] == pytest.approx([0.8, 0.5, 0.3])
    assert returns.tolist()[0] == pytest.approx([1.0, 1.0, 1.0])


def test_shaped_rewards_put_the_score_on_the_last_response_token() -> None:
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rewards = shaped_rewards(torch.tensor([2.0, -1.0]), kl, mask, kl_coef=0.5)
    assert rewards.tolist()[0] == pytest.approx([-0.05, 1.9, 0.0])
    assert rewards.tolist()[1] == pytest.approx([-0.25, -0.25, -1.25])


def test_policy_loss_clips_the_ratio_in_the_pessimistic_direction() -> None:
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.5, 0.5]]))
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    result = policy_loss(new, old, advantages, torch.ones(1, 4), cliprange=0.2)
    # per token: A>0,ρ=1.5 → −1.2 (clipped); A>0,ρ=.5 → −0.5; A<0,ρ=1.5 → 1.5; A<0,ρ=.5 → 0.8
    assert result.loss.item() == pytest.approx((-1.2 - 0.5 + 1.5 + 0.8) / 4)
    assert result.clip_fraction == pytest.approx(0.5)
    assert result.approx_kl == pytest.approx(
        0.5 * (2 * math.log(1.5) ** 2 + 2 * math.log(0.5) ** 2) / 4
    )


def test_policy_loss_gradient_vanishes_on_clipped_tokens() -> None:
    new = torch.log(torch.tensor([[1.5, 1.1]])).requires_grad_(True)
    result = policy_loss(new, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2), 0.2)
    result.loss.backward()
    assert new.grad is not None
    assert new.grad[0, 0].item() == 0.0  # ratio above 1+ε with A>0: no push further
    assert new.grad[0, 1].item() < 0.0


def test_policy_loss_ignores_padding() -> None:
    new = torch.tensor([[0.3, 5.0]])
    mask = torch.tensor([[1.0, 0.0]])
    padded = policy_loss(new, torch.zeros(1, 2), torch.ones(1, 2), mask, 0.2)
    alone = policy_loss(new[:, :1], torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    assert padded.loss.item() == pytest.approx(alone.loss.item())


def test_value_loss_takes_the_larger_of_plain_and_clipped_error() -> None:
    old = torch.tensor([[0.0, 0.0]])
    values = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[2.0, 1.0]])
    loss, fraction = value_loss(values, old, returns, torch.ones(1, 2), cliprange_value=0.2)
    # token 0: plain (1−2)² = 1, clipped (0.2−2)² = 3.24 → 3.24; token 1: 0.81 vs 0.64 → 0.81
    assert loss.item() == pytest.approx(0.5 * (3.24 + 0.81) / 2)
    assert fraction == pytest.approx(0.5)


def test_kl_estimators_are_unbiased_and_k3_is_never_negative() -> None:
    torch.manual_seed(0)
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.3, 0.5])
    true_kl = (p * (p / q).log()).sum().item()
    samples = torch.multinomial(p, 200_000, replacement=True)
    logp, logq = p.log()[samples], q.log()[samples]
    k1 = kl_per_token(logp, logq, "k1")
    k3 = kl_per_token(logp, logq, "k3")
    assert k1.mean().item() == pytest.approx(true_kl, rel=0.03)
    assert k3.mean().item() == pytest.approx(true_kl, rel=0.03)
    assert (k3 >= 0).all()
    assert (k1 < 0).any()  # k1 is negative on tokens the reference prefers
    assert k3.var().item() < k1.var().item()
    same = kl_per_token(logp, logp, "k3")
    assert same.abs().max().item() == 0.0
    assert kl_per_token(logp.half(), logq.half(), "k1").dtype == torch.float32
    with pytest.raises(ValueError, match="k2"):
        kl_per_token(logp, logq, "k2")


def test_adaptive_controller_moves_towards_the_target_at_a_bounded_rate() -> None:
    above = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    above.update(current_kl=8.0, n_steps=100)  # log error log 2
    assert above.value == pytest.approx(0.1 * math.exp(math.log(2) * 100 / 1000))
    far = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    far.update(current_kl=400.0, n_steps=100)  # error clipped to +1
    assert far.value == pytest.approx(0.1 * math.exp(100 / 1000))
    below = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    below.update(current_kl=3.6, n_steps=100)  # near the target: Ziegler's step
    assert below.value == pytest.approx(0.1 * (1 - 0.1 * 100 / 1000), rel=1e-3)
    assert below.value == pytest.approx(0.1 * 0.9 ** (100 / 1000))
    nothing = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    nothing.update(current_kl=0.0, n_steps=100)  # far below (or none): −0.2, as Ziegler's
    assert nothing.value == pytest.approx(0.1 * math.exp(-0.2 * 100 / 1000))
    on = AdaptiveKLController(0.1, target=4.0, horizon=1000)
    on.update(current_kl=4.0, n_steps=100)
    assert on.value == pytest.approx(0.1)
    # held above target, β grows geometrically (e-fold per horizon); the KL then falls back
    controller = AdaptiveKLController(0.05, target=2.0, horizon=256)
    for _ in range(8):
        controller.update(current_kl=10.0, n_steps=64)
    assert controller.value == pytest.approx(0.05 * math.e**2)
    fixed = FixedKLController(0.05)
    fixed.update(current_kl=100.0, n_steps=64)
    assert fixed.value == 0.05


def test_the_starting_beta_puts_a_gaussian_rewards_regularized_optimum_at_the_target() -> None:
    """π* ∝ π_ref·exp(r/β) for r ~ N(0, σ²) under π_ref is N(σ²/β, σ²), KL = σ²/(2β²): the
    calibrated β makes that the target, checked by sampling the tilted distribution."""
    rng = np.random.default_rng(0)
    for sigma, target in ((1.0, 3.0), (2.5, 1.0)):
        controller = AdaptiveKLController(0.05, target=target, horizon=512)
        controller.calibrate(sigma)
        beta = controller.value
        assert beta == pytest.approx(sigma / math.sqrt(2 * target))
        r = rng.normal(0.0, sigma, size=400_000)
        weights = np.exp(r / beta - (r / beta).max())
        weights /= weights.sum()
        # KL(π*‖π_ref) = E_π*[r/β] − log E_ref[exp(r/β)]
        kl = float((weights * r / beta).sum() - np.log(np.mean(np.exp(r / beta))))
        assert kl == pytest.approx(target, rel=0.05)
    unchanged = AdaptiveKLController(0.05, target=3.0, horizon=512)
    unchanged.calibrate(0.0)  # a rollout whose scores are all equal says nothing of the scale
    assert unchanged.value == 0.05


def test_running_moments_equal_the_statistics_of_everything_seen() -> None:
    rng = np.random.default_rng(3)
    chunks = [rng.normal(2.0, 3.0, size=n) for n in (7, 64, 1, 30)]
    moments = RunningMoments()
    for chunk in chunks:
        moments.update(torch.tensor(chunk))
    everything = np.concatenate(chunks)
    assert moments.mean == pytest.approx(everything.mean())
    assert moments.std == pytest.approx(everything.std())
    assert moments.count == len(everything)
    restored = RunningMoments()
    restored.load(moments.state())
    assert (restored.mean, restored.std) == (moments.mean, moments.std)


def test_masked_statistics_whitening_entropy_and_explained_variance() -> None:
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert masked_mean(values, mask).item() == pytest.approx(2.5)
    whitened = masked_whiten(values, mask)
    kept = whitened[mask.bool()]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert kept.var().item() == pytest.approx(1.0, rel=1e-4)
    assert whitened[~mask.bool()].abs().sum() == 0
    uniform = torch.zeros(1, 4)
    assert entropy_from_logits(uniform).item() == pytest.approx(math.log(4))
    returns = torch.tensor([[1.0, 2.0, 3.0]])
    full = torch.ones(1, 3)
    assert explained_variance(returns, returns, full) == pytest.approx(1.0)
    assert explained_variance(torch.zeros(1, 3), returns, full) == pytest.approx(0.0)


def test_the_default_horizon_brings_the_kl_into_its_target_band_within_a_default_run() -> None:
    """β against a policy whose KL follows β with a lag (half-way each step towards c/β,
    c set so that the starting β would end at twice the target): with the default horizon
    (an eighth of the run) the KL is inside ±20 % of target_kl by the run's last quarter
    and stays there; the old fixed 10,000-episode horizon barely moves β in a default run
    and leaves the KL at about twice its target. Deterministic: no false failures."""
    from training.ml.ppo import kl_horizon, parse_ppo_config
    from training.ml.ppo_math import AdaptiveKLController

    config = parse_ppo_config({})
    steps = config.total_episodes // config.batch_size

    def final_kls(horizon: int) -> list[float]:
        controller = AdaptiveKLController(config.kl_coef, config.target_kl, horizon)
        pressure = 2 * config.target_kl * config.kl_coef  # KL at equilibrium = pressure / β
        kl, seen = 0.0, []
        for _ in range(steps):
            kl += 0.5 * (pressure / controller.value - kl)
            seen.append(kl)
            controller.update(kl, config.batch_size)
        return seen[-steps // 4 :]

    band = (0.8 * config.target_kl, 1.2 * config.target_kl)
    assert all(band[0] <= kl <= band[1] for kl in final_kls(kl_horizon(config)))
    assert all(kl > band[1] for kl in final_kls(10_000))
