"""The arithmetic of PPO for language models, on tensors: masked statistics, per-token KL
estimators, GAE, the clipped policy and value losses, KL controllers and running reward
moments. Written to the published implementation details (Ziegler et al. 2019; "The N+
implementation details of RLHF with PPO"; PPO-max). Plain Python + torch: no Django.

Shapes: ``[batch, response_tokens]`` with a ``mask`` of the same shape, 1 on the tokens of the
response (the stop token included), 0 on the padding after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the masked entries."""
    mean = masked_mean(values, mask)
    count = mask.sum()
    squares = (((values - mean) * mask) ** 2).sum()
    return squares / (count - 1).clamp(min=1)


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True
) -> torch.Tensor:
    """Zero mean (unless ``shift_mean`` is off), unit variance over the masked entries."""
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def kl_per_token(
    logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str = "k1"
) -> torch.Tensor:
    """Per-token estimate of KL(policy ‖ reference) from the sampled tokens' log-probs, in
    fp32. ``k1`` = log p − log q (unbiased, can be negative per token); ``k3`` = (r − 1) − log r
    with r = q/p (unbiased, never negative, lower variance)."""
    log_ratio = logprobs.float() - ref_logprobs.float()
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r} (k1 or k3)")


def shaped_rewards(
    scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> torch.Tensor:
    """Per-token rewards: −β·KL on every response token, the sequence score added at the
    last token of each response."""
    rewards = -kl_coef * kl * mask
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(scores)), last] += scores
    return rewards


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over each response; the value after the last token
    is 0 (the episode ends). Returns ``(advantages, returns)``, zero on padding."""
    values = values * mask
    rewards = rewards * mask
    steps = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(steps)):
        next_value = values[:, t + 1] if t + 1 < steps else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask


@dataclass(frozen=True)
class PolicyLoss:
    loss: torch.Tensor
    clip_fraction: float
    approx_kl: float


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> PolicyLoss:
    """PPO's clipped surrogate: mean over tokens of max(−A·ρ, −A·clip(ρ, 1±ε))."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), mask).item()
        approx_kl = masked_mean(0.5 * log_ratio**2, mask).item()
    return PolicyLoss(loss, clip_fraction, approx_kl)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, float]:
    """Clipped value loss: ½·mean(max((V − R)², (clip(V, V_old ± ε) − R)²)); with the share
    of tokens where the clipped term was the larger."""
    clipped_values = old_values + torch.clamp(
        values - old_values, -cliprange_value, cliprange_value
    )
    plain = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(plain, clipped), mask)
    with torch.no_grad():
        fraction = masked_mean((clipped > plain).float(), mask).item()
    return loss, fraction


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's next-token distribution, in nats."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(returns − values) / Var(returns): 1 is a perfect critic, ≤ 0 a useless one."""
    var_returns = masked_var(returns, mask).item()
    if var_returns == 0:
        return math.nan
    return 1.0 - masked_var(returns - values, mask).item() / var_returns


class FixedKLController:
    """A constant KL coefficient β."""

    def __init__(self, kl_coef: float) -> None:
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        """Nothing to adapt."""


class AdaptiveKLController:
    """Integral control of β in log space, after Ziegler et al. (2019):
    β ← β·exp(e·n/H), e = log(KL/KL_target) clipped to [−max_fall, +max_rise]. Near the
    target the step is Ziegler's (log(KL/target) ≈ KL/target − 1). Above it, the error is
    clipped at +1 instead of +0.2, so β can grow e-fold in one horizon H and an overshoot is
    caught within a few steps. Below it, β falls at Ziegler's bounded rate: a KL under target
    early in a run says the policy has not moved yet, not that β is too strong, and letting
    β collapse then is what makes the KL overshoot later. :meth:`calibrate` sets the starting
    β from the reward's scale."""

    def __init__(
        self,
        init_kl_coef: float,
        target: float,
        horizon: int,
        max_rise: float = 1.0,
        max_fall: float = 0.2,
    ) -> None:
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon
        self.max_rise = max_rise
        self.max_fall = max_fall

    def update(self, current_kl: float, n_steps: int) -> None:
        ratio = max(current_kl, 1e-3 * self.target) / self.target
        error = min(max(math.log(ratio), -self.max_fall), self.max_rise)
        self.value *= math.exp(error * n_steps / self.horizon)

    def calibrate(self, score_std: float) -> None:
        """β = σ/√(2·target): for rewards of spread σ (Gaussian under the reference), the
        KL-regularized optimum π_ref·exp(r/β) is σ²/(2β²) nats from the reference — at the
        target with this β. A scale-free start: the controller only corrects from there."""
        if score_std > 0:
            self.value = score_std / math.sqrt(2.0 * self.target)


class RunningMoments:
    """Mean and standard deviation of every value seen so far (Chan's parallel update), to
    normalize rewards across rollouts."""

    def __init__(self) -> None:
        self.mean = 0.0
        self.var = 1.0
        self.count = 0

    def update(self, values: torch.Tensor) -> None:
        values = values.double()
        n = values.numel()
        if n == 0:
            return
        batch_mean = values.mean().item()
        batch_var = values.var(unbiased=False).item() if n > 1 else 0.0
        total = self.count + n
        delta = batch_mean - self.mean
        if self.count == 0:
            self.mean, self.var = batch_mean, batch_var
        else:
            m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
            self.mean += delta * n / total
            self.var = m2 / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(self.var) if self.var > 0 else 1.0

    def state(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], int(state["count"])
