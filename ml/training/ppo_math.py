"""PPO's arithmetic on token tensors: masked statistics, the response mask, KL-penalised
rewards, GAE, the clipped policy and value losses, the adaptive KL coefficient and the
length guard (after Ziegler et al. 2019 and TRL's former PPOTrainer). Pure functions of
tensors, no model: ``ppo.py`` runs them, the tests check them one by one."""

from __future__ import annotations

import torch

from ml.training.common import TrainingDiverged


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    count = mask.sum()
    if unbiased and count > 1:
        variance = variance * count / (count - 1)
    return variance


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True
) -> torch.Tensor:
    """Zero mean, unit variance over the unmasked entries (the mean is kept when not
    ``shift_mean``); masked entries come back as 0."""
    mean, variance = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def response_mask(response_ids: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """1.0 for response tokens up to and including the first EOS, 0.0 after it. Trailing pad
    tokens of a response without EOS are masked too; a pad token the policy sampled in the
    middle of an answer is an action like any other and stays."""
    is_eos = response_ids == eos_id
    after_eos = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    is_pad = response_ids == pad_id
    trailing_pad = is_pad.flip(1).long().cumprod(1).flip(1).bool() & ~is_eos
    return (~after_eos & ~trailing_pad).float()


def kl_penalised_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> torch.Tensor:
    """Per-token reward -kl_coef * (logprob - ref_logprob), plus the sequence's score on its
    last unmasked token."""
    rewards = -kl_coef * (logprobs - ref_logprobs) * mask
    positions = torch.arange(mask.shape[1], device=mask.device)
    last = (positions * mask).argmax(dim=1)
    rewards[torch.arange(mask.shape[0], device=mask.device), last] += scores
    return rewards


def compute_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens. ``mask`` is a prefix (tokens up
    to EOS): past it rewards and values count as 0, so the last real token bootstraps from 0.
    Returns (advantages, returns), both 0 where masked."""
    rewards, values = rewards * mask, values * mask
    length = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(length)):
        next_value = values[:, t + 1] if t + 1 < length else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate. Returns (loss, clip fraction: share of tokens where the
    clipped term is the one that counts, approx KL: mean of half the squared log-ratio)."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clip_fraction = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clip_fraction, approx_kl


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: half the larger squared error of the new value and of the value
    kept within ``cliprange_value`` of the old one. Returns (loss, clip fraction)."""
    clipped_values = old_values + torch.clamp(
        values - old_values, -cliprange_value, cliprange_value
    )
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(unclipped_error, clipped_error), mask)
    clip_fraction = masked_mean((clipped_error > unclipped_error).float(), mask)
    return loss, clip_fraction


class AdaptiveKLController:
    """Ziegler et al. (2019): move the KL weight by at most 20% of n_steps/horizon per update
    towards the coefficient that keeps the KL at ``target``."""

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


class LengthGuard:
    """Stops a run whose mean response length sits at or above ``bound`` for ``patience``
    updates in a row, when the first update was below it: answers that grow to the token
    limit are the usual reward hack. A policy that filled the limit from the start says
    nothing about drift, so the guard stays off for it."""

    def __init__(self, bound: float, patience: int) -> None:
        self.bound = bound
        self.patience = patience
        self.armed: bool | None = None
        self.updates_at_bound = 0

    def check(self, response_length: float, update: int) -> None:
        if self.armed is None:
            self.armed = response_length < self.bound
        self.updates_at_bound = self.updates_at_bound + 1 if response_length >= self.bound else 0
        if self.armed and self.updates_at_bound >= self.patience:
            raise TrainingDiverged(
                f"response_length {response_length:.1f} stayed at or above {self.bound:.1f} "
                f"tokens for {self.updates_at_bound} updates (update {update})"
            )


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - (logits.softmax(-1) * logits).sum(-1)
