"""LoRA-PPO against a reward function, on transformers + peft + accelerate.

TRL 1.16 has no PPO trainer, so the loop is written out here (after Ziegler et al. 2019 and
TRL's former PPOTrainer). One backbone does everything: the LoRA policy, a value head on its
last hidden state, and the reference policy, which is the same model with the adapter
disabled. Each update samples ``batch_size`` prompts per process, generates answers with the
chat template (in torch, or in llama.cpp with the policy's current LoRA: see rollouts.py),
scores them with ``reward_fn`` on decoded text, puts a per-token KL penalty on
the rewards, estimates advantages with GAE and runs ``ppo_epochs`` passes of clipped policy
and value losses over mini-batches.

The same code runs on one CPU, one GPU or several under ``accelerate launch`` (several CPU
processes start with ``torchrun --nproc_per_node N -m ml.training.ppo ...``):

    accelerate launch -m ml.training.ppo --config cfg.json --prompts prompts.jsonl \\
        --reward-model var/reward/rm-20250101

``batch_size`` is per process; advantages are whitened within each process's batch, and the
logged metrics are gathered over all of them. Guards stop a run whose KL or response length
runs away, or whose loss or reward is not finite, with ``TrainingDiverged``; a cancelled run
raises ``Cancelled``. Either way nothing is saved. The adapter folder holds the LoRA weights
only: the value head is not kept, so a run that starts from a parent adapter trains a fresh
one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ml.jsonl import read_records
from ml.training.common import (
    Cancelled,
    MemoryReporter,
    Reporter,
    TrainingDiverged,
    check_new_version,
    config_dict,
    device_name,
    load_policy,
    new_version,
    resolve_parent,
    save_adapter,
)
from ml.training.data import Message, prompt_text
from ml.training.ppo_math import (
    AdaptiveKLController,
    LengthGuard,
    compute_gae,
    kl_penalised_rewards,
    masked_mean,
    masked_whiten,
    policy_loss,
    response_mask,
    token_entropy,
    token_logprobs,
    value_loss,
)
from ml.training.results import TrainResult
from ml.training.rollouts import LlamaCppRollouts, RolloutEngine, TorchRollouts

RewardFunction = Callable[[list[str], list[str]], list[float]]
"""Prompts as plain text (``prompt_text``) and decoded responses -> one score per pair."""


@dataclass(frozen=True)
class PPOConfig:
    base_model: str = field(metadata={"help": "Causal LM folder (with a chat template)."})
    adapters_dir: str = field(metadata={"help": "Where the finished adapter folder goes."})
    parent_adapter: str = field(
        default="",
        metadata={
            "help": "Adapter to start from (the served or SFT adapter: a folder, or a version "
            "in adapters_dir); it keeps its own LoRA shape. Empty or base: a fresh LoRA."
        },
    )
    version: str = field(default="", metadata={"help": "Adapter version; empty: ppo-<time>."})
    lora_r: int = field(default=32, metadata={"help": "LoRA rank (fresh LoRA only)."})
    lora_alpha: int = field(default=64, metadata={"help": "LoRA alpha (fresh LoRA only)."})
    lora_dropout: float = field(
        default=0.05,
        metadata={"help": "LoRA dropout, active in the optimisation passes only."},
    )
    target_modules: tuple[str, ...] = field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        metadata={"help": "Modules that get LoRA weights (fresh LoRA only)."},
    )
    learning_rate: float = field(default=1.41e-5, metadata={"help": "AdamW learning rate."})
    ppo_epochs: int = field(
        default=3, metadata={"help": "Optimisation epochs over each rollout batch."}
    )
    total_updates: int = field(
        default=0,
        metadata={
            "help": "Rollout+optimise rounds; prompts are reshuffled and reused as needed. "
            "0: one pass over the prompts, ceil(len(prompts) / (batch_size * processes))."
        },
    )
    batch_size: int = field(default=8, metadata={"help": "Prompts per rollout, per process."})
    mini_batch_size: int = field(
        default=4, metadata={"help": "Rollouts per optimiser step; divides batch_size."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Longest generated response."})
    temperature: float = field(
        default=0.7,
        metadata={"help": "Sampling temperature; log-probabilities use the same one."},
    )
    top_k: int = field(
        default=0, metadata={"help": "Top-k sampling; 0: off. Log-probabilities ignore the cut."}
    )
    top_p: float = field(
        default=1.0, metadata={"help": "Nucleus sampling; 1.0: off. Log-probabilities ignore it."}
    )
    rollout_engine: str = field(
        default="auto",
        metadata={
            "help": "Where rollouts are sampled: torch (generate on the training device), "
            "llamacpp (CPU: the policy's current LoRA sampled by llama.cpp on rollout_gguf; "
            "log-probabilities, values and gradients stay in torch), or auto (llamacpp on "
            "CPU when rollout_gguf is set, else torch)."
        },
    )
    rollout_gguf: str = field(
        default="",
        metadata={"help": "GGUF file of base_model for llamacpp rollouts (the served GGUF)."},
    )
    rollout_threads: int = field(
        default=0, metadata={"help": "llama.cpp threads for rollouts; 0: every usable core."}
    )
    max_prompt_tokens: int = field(
        default=512,
        metadata={"help": "Longer prompts keep their last tokens (the question, the turn)."},
    )
    gamma: float = field(default=1.0, metadata={"help": "Discount over response tokens."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda."})
    cliprange: float = field(default=0.2, metadata={"help": "Policy ratio clip range."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Value clip range."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss."})
    init_kl_coef: float = field(default=0.05, metadata={"help": "Initial KL penalty weight."})
    adaptive_kl: bool = field(
        default=True, metadata={"help": "Adapt the KL weight towards target_kl (Ziegler)."}
    )
    target_kl: float = field(
        default=6.0, metadata={"help": "KL per response (summed over tokens) to aim for."}
    )
    kl_horizon: int = field(default=10000, metadata={"help": "Horizon of the KL controller."})
    whiten_rewards: bool = field(
        default=False,
        metadata={"help": "Whiten token rewards (not re-centred); advantages always are."},
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient norm clip."})
    kl_stop: float = field(
        default=30.0,
        metadata={"help": "Stop (TrainingDiverged) when the mean KL per response exceeds it."},
    )
    length_stop_fraction: float = field(
        default=0.95,
        metadata={
            "help": "Stop when the mean response length stays at or above this fraction of "
            "max_new_tokens for length_stop_patience updates in a row, having started below "
            "it (answers that grow to the limit are the usual reward hack). Above 1: off."
        },
    )
    length_stop_patience: int = field(
        default=5, metadata={"help": "Updates in a row at the length bound before stopping."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of LoRA init, prompt order, samples."})
    device: str = field(
        default="auto",
        metadata={"help": "auto or cpu; under accelerate launch the launcher places processes."},
    )
    data_snapshot: str = field(default="", metadata={"help": "Recorded in the manifest."})


# --- model ------------------------------------------------------------------------------


class PolicyAndValue(torch.nn.Module):
    """The LoRA policy and a value head on its last hidden state: one backbone, one optimizer
    and one ``accelerator.prepare``. The reference policy is the same backbone with the
    adapter disabled, so no second copy of the weights is held."""

    def __init__(self, policy: Any) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = torch.nn.Linear(policy.config.hidden_size, 1)
        # Values start at 0, so the first advantages are the returns themselves.
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and values at the positions that predict the last ``response_length``
        tokens of each row."""
        out = self.policy(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=_position_ids(attention_mask),
            logits_to_keep=response_length + 1,
            output_hidden_states=True,
            use_cache=False,
        )
        hidden = out.hidden_states[-1][:, -response_length - 1 : -1]
        return out.logits[:, :-1], self.value_head(hidden).squeeze(-1)

    def reference_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_length: int
    ) -> torch.Tensor:
        with self.policy.disable_adapter():
            out = self.policy(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=_position_ids(attention_mask),
                logits_to_keep=response_length + 1,
                use_cache=False,
            )
        return out.logits[:, :-1]


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    # Left padding: positions count from each row's first real token, as in generate().
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def encode_prompt(tokenizer: Any, messages: Sequence[Message], max_tokens: int) -> list[int]:
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[-max_tokens:]


def left_pad(
    rows: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def prompt_batches(
    count: int, per_process: int, processes: int, rank: int, seed: int
) -> Iterator[list[int]]:
    """This process's prompt indices for each update: walks reshuffled passes over all
    prompts, ``per_process * processes`` at a time, each process taking its own slice."""
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while True:
        while len(order) < per_process * processes:
            order += torch.randperm(count, generator=generator).tolist()
        batch, order = order[: per_process * processes], order[per_process * processes :]
        yield batch[rank * per_process : (rank + 1) * per_process]


# --- training ---------------------------------------------------------------------------


def main(
    config: PPOConfig,
    prompts: Sequence[Sequence[Message]],
    reward_fn: RewardFunction,
    reporter: Reporter | None = None,
) -> TrainResult:
    with contextlib.ExitStack() as stack:  # frees the rollout engine however the run ends
        return _train(config, prompts, reward_fn, reporter, stack)


def rollout_engine(config: PPOConfig, generation: Any, *, on_cpu: bool, seed: int) -> RolloutEngine:
    engine = config.rollout_engine
    if engine == "auto":
        engine = "llamacpp" if on_cpu and config.rollout_gguf else "torch"
    if engine == "torch":
        return TorchRollouts(generation)
    if engine != "llamacpp":
        raise ValueError(f"rollout_engine {engine!r}: use auto, torch or llamacpp")
    if not config.rollout_gguf:
        raise ValueError("llamacpp rollouts need rollout_gguf (the base model's GGUF file)")
    return LlamaCppRollouts(
        Path(config.rollout_gguf),
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        eos_id=generation.eos_token_id,
        pad_id=generation.pad_token_id,
        seed=seed,
        threads=config.rollout_threads or None,
        context_tokens=config.max_prompt_tokens + config.max_new_tokens + 8,
    )


def _train(
    config: PPOConfig,
    prompts: Sequence[Sequence[Message]],
    reward_fn: RewardFunction,
    reporter: Reporter | None,
    stack: contextlib.ExitStack,
) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list, set_seed
    from peft import LoraConfig, get_peft_model
    from transformers import GenerationConfig

    if not prompts:
        raise ValueError("PPO needs at least one prompt")
    if config.batch_size % config.mini_batch_size:
        raise ValueError("mini_batch_size must divide batch_size")
    if config.temperature <= 0:
        raise ValueError("temperature must be positive (PPO samples its rollouts)")
    reporter = reporter or MemoryReporter()
    adapters_dir = Path(config.adapters_dir)
    on_cpu = device_name(config.device) == "cpu"
    bf16 = not on_cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    accelerator = Accelerator(cpu=on_cpu, mixed_precision="bf16" if bf16 else "no")
    device = accelerator.device
    # Each process would read its own clock: the main process names the version for all.
    version = broadcast_object_list([config.version or new_version("ppo")])[0]
    check_new_version(adapters_dir, version)
    parent_folder, parent = resolve_parent(config.parent_adapter, adapters_dir)
    set_seed(config.seed)  # the same LoRA init in every process

    policy, tokenizer = load_policy(config.base_model, parent_folder)
    tokenizer.padding_side = "left"
    if parent_folder is None:
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
        )
        policy = get_peft_model(policy, lora)
    model = PolicyAndValue(policy)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped: PolicyAndValue = accelerator.unwrap_model(model)
    generation = GenerationConfig(
        do_sample=True,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )

    rollouts = rollout_engine(
        config, generation, on_cpu=on_cpu, seed=config.seed + accelerator.process_index
    )
    stack.callback(getattr(rollouts, "close", lambda: None))
    encoded = [encode_prompt(tokenizer, p, config.max_prompt_tokens) for p in prompts]
    texts = [prompt_text(p) for p in prompts]
    processes = accelerator.num_processes
    global_batch = config.batch_size * processes
    total = config.total_updates or math.ceil(len(prompts) / global_batch)
    batches = prompt_batches(
        len(prompts), config.batch_size, processes, accelerator.process_index, config.seed
    )
    set_seed(config.seed, device_specific=True)  # but different samples in each process
    kl_control = AdaptiveKLController(config.init_kl_coef, config.target_kl, config.kl_horizon)
    length_guard = LengthGuard(
        config.length_stop_fraction * config.max_new_tokens, config.length_stop_patience
    )
    series: list[dict[str, float]] = []
    started = time.perf_counter()

    for update in range(total):
        _check_stop(accelerator, reporter)
        update_started = time.perf_counter()
        indices = next(batches)

        # Rollout: sample, then score every token under the policy, the reference and the
        # value head. Dropout is off here, so the first epoch's ratios start at exactly 1.
        model.eval()
        with torch.no_grad(), accelerator.autocast():
            query, query_mask = left_pad(
                [encoded[i] for i in indices], tokenizer.pad_token_id, device
            )
            sample_started = time.perf_counter()
            response = rollouts.sample(unwrapped.policy, query, query_mask)
            rollout_seconds = time.perf_counter() - sample_started
            sequences = torch.cat([query, response], dim=1)
            length = response.shape[1]
            mask = response_mask(response, tokenizer.eos_token_id, tokenizer.pad_token_id)
            attention = torch.cat([query_mask, mask.long()], dim=1)
            logprob_parts, ref_parts, value_parts, entropies = [], [], [], []
            for chunk in torch.arange(len(indices), device=device).split(config.mini_batch_size):
                logits, chunk_values = unwrapped(sequences[chunk], attention[chunk], length)
                logits = logits.float() / config.temperature
                logprob_parts.append(token_logprobs(logits, response[chunk]))
                entropies.append(token_entropy(logits))
                value_parts.append(chunk_values.float())
                ref_logits = unwrapped.reference_logits(sequences[chunk], attention[chunk], length)
                ref_parts.append(
                    token_logprobs(ref_logits.float() / config.temperature, response[chunk])
                )
            logprobs, ref_logprobs = torch.cat(logprob_parts), torch.cat(ref_parts)
            values, entropy = torch.cat(value_parts), masked_mean(torch.cat(entropies), mask)
        answers = [
            tokenizer.decode(row[row_mask.bool()].tolist(), skip_special_tokens=True)
            for row, row_mask in zip(response, mask, strict=True)
        ]
        scores = torch.tensor(
            reward_fn([texts[i] for i in indices], answers), dtype=torch.float32, device=device
        )
        if scores.shape != (len(indices),):
            raise ValueError(
                f"reward_fn returned {scores.shape[0]} scores for {len(indices)} answers"
            )

        # Advantages: KL-penalised token rewards with the score on the last token, then GAE.
        kl_coef = kl_control.value
        rewards = kl_penalised_rewards(scores, logprobs, ref_logprobs, mask, kl_coef)
        if config.whiten_rewards:
            rewards = masked_whiten(rewards, mask, shift_mean=False)
        advantages, returns = compute_gae(rewards, values, mask, config.gamma, config.lam)
        advantages = masked_whiten(advantages, mask)

        all_scores = accelerator.gather(scores)
        kl = accelerator.gather(((logprobs - ref_logprobs) * mask).sum(1)).mean().item()
        response_length = accelerator.gather(mask.sum(1)).mean().item()
        if not math.isfinite(all_scores.sum().item()):
            raise TrainingDiverged(f"reward is not finite at update {update + 1}")
        if kl > config.kl_stop:
            raise TrainingDiverged(
                f"kl {kl:.3g} exceeded kl_stop {config.kl_stop:g} at update {update + 1}"
            )
        length_guard.check(response_length, update + 1)

        # Optimise: ppo_epochs shuffled passes of clipped policy and value losses.
        optimise_started = time.perf_counter()
        model.train()
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(config.ppo_epochs):
            for mb in torch.randperm(len(indices), device=device).split(config.mini_batch_size):
                logits, new_values = model(sequences[mb], attention[mb], length)
                new_logprobs = token_logprobs(logits.float() / config.temperature, response[mb])
                pg_loss, clip_fraction, approx_kl = policy_loss(
                    new_logprobs, logprobs[mb], advantages[mb], mask[mb], config.cliprange
                )
                vf_loss, value_clip_fraction = value_loss(
                    new_values.float(), values[mb], returns[mb], mask[mb], config.cliprange_value
                )
                loss = pg_loss + config.vf_coef * vf_loss
                # Every process must see the same verdict, or the others hang in backward.
                finite = accelerator.gather(torch.isfinite(loss).float().reshape(1)).min().item()
                if not finite:
                    raise TrainingDiverged(f"loss is not finite at update {update + 1}")
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                stats["policy_loss"].append(pg_loss.item())
                stats["value_loss"].append(vf_loss.item())
                stats["clip_fraction"].append(clip_fraction.item())
                stats["value_clip_fraction"].append(value_clip_fraction.item())
                stats["approx_kl"].append(approx_kl.item())

        if config.adaptive_kl:
            kl_control.update(kl, n_steps=global_batch)
        local = {name: _mean(numbers) for name, numbers in stats.items()}
        local["entropy"] = entropy.item()
        names = sorted(local)
        averaged = accelerator.reduce(
            torch.tensor([local[n] for n in names], device=device), reduction="mean"
        ).tolist()
        finished = time.perf_counter()
        metrics = {
            "reward_mean": all_scores.mean().item(),
            "reward_std": all_scores.std().item() if all_scores.numel() > 1 else 0.0,
            "kl": kl,
            "kl_coef": kl_coef,
            **dict(zip(names, averaged, strict=True)),
            "response_length": response_length,
            "seconds": finished - update_started,
            # Where the update's time went: sampling the rollouts (what a fast engine
            # speeds up); scoring them under policy, reference, value head and reward;
            # the optimizer passes.
            "rollout_seconds": rollout_seconds,
            "scoring_seconds": optimise_started - update_started - rollout_seconds,
            "optimise_seconds": finished - optimise_started,
        }
        series.append(metrics)
        if accelerator.is_main_process:
            reporter.log(update + 1, metrics)
            reporter.progress(update + 1, total)

    summary = {
        **series[-1],
        "updates": float(total),
        "seconds_total": time.perf_counter() - started,
        "reward_mean_start": _mean([row["reward_mean"] for row in series[:3]]),
        "reward_mean_end": _mean([row["reward_mean"] for row in series[-3:]]),
    }
    accelerator.wait_for_everyone()
    path = adapters_dir / version
    if accelerator.is_main_process:
        path = save_adapter(
            unwrapped.policy,
            adapters_dir=adapters_dir,
            version=version,
            base_model=config.base_model,
            parent=parent,
            algorithm="ppo",
            data_snapshot=config.data_snapshot,
            config=config_dict(config),
            metrics=summary,
        )
    accelerator.wait_for_everyone()
    return TrainResult(algorithm="ppo", version=version, path=path, metrics=summary, steps=total)


def _check_stop(accelerator: Any, reporter: Reporter) -> None:
    # All processes leave together, or the others wait forever in the next collective.
    asked = torch.tensor([float(reporter.should_stop())], device=accelerator.device)
    if accelerator.gather(asked).max().item() > 0:
        raise Cancelled("the run was cancelled")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


# --- reward model and command line ------------------------------------------------------


def read_prompts(path: Path) -> list[list[Message]]:
    """JSON Lines, one ``{"prompt": [messages]}`` per line."""

    def parse(record: Any) -> list[Message]:
        prompt = record["prompt"]
        if not isinstance(prompt, list) or not all("content" in m for m in prompt):
            raise TypeError("prompt is not a list of messages")
        return prompt

    return read_records(path, parse, what="a prompt")


def _cli(argv: Sequence[str] | None = None) -> None:
    from accelerate import PartialState

    from ml.training.reward import load_reward_scorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="JSON of PPOConfig fields")
    parser.add_argument("--prompts", type=Path, required=True, help='{"prompt": [...]} lines')
    parser.add_argument("--reward-model", type=Path, required=True, help="classifier folder")
    args = parser.parse_args(argv)
    fields = json.loads(args.config.read_text())
    if "target_modules" in fields:
        fields["target_modules"] = tuple(fields["target_modules"])
    config = PPOConfig(**fields)
    state = PartialState(cpu=device_name(config.device) == "cpu")
    reward_fn = load_reward_scorer(args.reward_model, device=str(state.device))
    reporter = MemoryReporter(echo=state.is_main_process)
    result = main(config, read_prompts(args.prompts), reward_fn, reporter)
    if state.is_main_process:
        print(
            json.dumps(
                {
                    "algorithm": "ppo",
                    "version": result.version,
                    "path": str(result.path),
                    "steps": result.steps,
                    "metrics": result.metrics,
                }
            )
        )


if __name__ == "__main__":
    _cli()
