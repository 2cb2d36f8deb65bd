"""LoRA-PPO: the arithmetic against hand-computed values, a small task on a tiny random Llama
where PPO visibly raises the reward, real steps on SmolLM2-135M-Instruct, and the guards."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from ml import adapters
from ml.prompting import Passage, build_messages
from ml.training.common import Cancelled, MemoryReporter, TrainingDiverged, make_tiny_llama
from ml.training.data import PreferencePair
from ml.training.ppo import PPOConfig, encode_prompt, main, prompt_batches
from ml.training.ppo_math import (
    AdaptiveKLController,
    LengthGuard,
    compute_gae,
    kl_penalised_rewards,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    response_mask,
    value_loss,
)
from ml.training.results import TrainResult

QUESTIONS = [
    "What heating temperature applies to warehouse forklift areas?",
    "How thick must the slab be?",
    "Which fan is required in the plant room?",
    "Where do the floor drains go?",
    "What snow load applies to roofs?",
    "How wide are the egress doors?",
    "When is sprinkler coverage needed?",
    "Who approves a waiver?",
]
PASSAGE = Passage(
    1,
    1,
    "UFC 3-410-01",
    25,
    "3-5.3.4",
    "3-5.3.4 Spaces Conditioned for Heating - High to Moderate Physical Activity. "
    "55°F (12.8°C) dry bulb. Examples include warehouse areas with forklift operations.",
)
PROMPTS = [build_messages(q, [PASSAGE]) for q in QUESTIONS]


def t(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# --- arithmetic -------------------------------------------------------------------------


def test_gae_masks_the_cut_token_and_bootstraps_from_zero():
    rewards = t([[0.0, 1.0, 5.0], [0.0, 0.0, 1.0]])
    values = t([[0.5, 0.25, 9.0], [0.0, 0.0, 0.0]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # Row 0, token 2 is masked: its reward 5 and value 9 count as 0.
    #   t=1: delta = 1 + 0.9*0 - 0.25 = 0.75;            A1 = 0.75
    #   t=0: delta = 0 + 0.9*0.25 - 0.5 = -0.275;        A0 = -0.275 + 0.9*0.8*0.75 = 0.265
    #   returns = A + V = [0.765, 1.0, 0]
    # Row 1, all real, values 0: A2 = 1, A1 = 0.72*1 = 0.72, A0 = 0.72*0.72 = 0.5184
    assert torch.allclose(advantages, t([[0.265, 0.75, 0.0], [0.5184, 0.72, 1.0]]))
    assert torch.allclose(returns, t([[0.765, 1.0, 0.0], [0.5184, 0.72, 1.0]]))


def test_masked_whitening_ignores_masked_entries():
    values, mask = t([[1.0, 2.0, 3.0, 100.0]]), t([[1, 1, 1, 0]])
    # mean of 1, 2, 3 = 2; squared deviations 1, 0, 1 -> biased var 2/3, unbiased 2/2 = 1
    assert masked_mean(values, mask).item() == pytest.approx(2.0)
    assert masked_var(values, mask).item() == pytest.approx(1.0)
    assert masked_var(values, mask, unbiased=False).item() == pytest.approx(2 / 3)
    # (x - 2) / sqrt(1) = -1, 0, 1; the masked 100 comes back as 0
    assert torch.allclose(masked_whiten(values, mask), t([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-6)
    # without shifting the mean: (x - 2) / 1 + 2
    assert torch.allclose(
        masked_whiten(values, mask, shift_mean=False), t([[1.0, 2.0, 3.0, 0.0]]), atol=1e-6
    )


def test_policy_loss_clips_the_ratio_outside_the_range():
    # ratios 1.1 (inside 0.8..1.2) and 1.5 (outside), advantages 1; a masked third token
    logprobs = t([[math.log(1.1), math.log(1.5), math.log(5.0)]])
    old, advantages, mask = t([[0.0, 0.0, 0.0]]), t([[1.0, 1.0, 1.0]]), t([[1, 1, 0]])
    loss, clip_fraction, approx_kl = policy_loss(logprobs, old, advantages, mask, cliprange=0.2)
    # token 0: max(-1.1, -1.1) = -1.1; token 1: max(-1.5, -1.2) = -1.2 (the clipped term)
    assert loss.item() == pytest.approx((-1.1 - 1.2) / 2)
    assert clip_fraction.item() == pytest.approx(0.5)
    # 0.5 * mean(ln(1.1)^2, ln(1.5)^2) = 0.25 * (0.009084 + 0.164402) = 0.043372
    assert approx_kl.item() == pytest.approx(0.25 * (math.log(1.1) ** 2 + math.log(1.5) ** 2))


def test_value_loss_clips_a_value_that_moved_too_far():
    values, old, returns, mask = t([[0.1, 1.0]]), t([[0.0, 0.0]]), t([[1.0, 1.0]]), t([[1, 1]])
    loss, clip_fraction = value_loss(values, old, returns, mask, cliprange_value=0.2)
    # token 0 moved 0.1 (inside): (0.1 - 1)^2 = 0.81 either way
    # token 1 moved 1.0, clipped to 0.2: max((1 - 1)^2, (0.2 - 1)^2) = 0.64
    # 0.5 * (0.81 + 0.64) / 2 = 0.3625
    assert loss.item() == pytest.approx(0.3625)
    assert clip_fraction.item() == pytest.approx(0.5)


def test_kl_penalty_per_token_and_score_on_the_last_real_token():
    scores = torch.tensor([2.0, -1.0])
    logprobs = t([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    ref_logprobs = t([[-1.5, -2.0, -2.0], [-1.0, -2.0, -1.0]])
    mask = t([[1, 1, 0], [1, 1, 1]])
    rewards = kl_penalised_rewards(scores, logprobs, ref_logprobs, mask, kl_coef=0.1)
    # row 0: kl = [0.5, 0, (masked)] -> -0.1 * kl = [-0.05, 0, 0]; score 2 on token 1
    # row 1: kl = [0, 1, 0] -> [0, -0.1, 0]; score -1 on token 2
    assert torch.allclose(rewards, t([[-0.05, 2.0, 0.0], [0.0, -0.1, -1.0]]))


def test_adaptive_kl_moves_the_coefficient_up_and_down():
    controller = AdaptiveKLController(0.05, target=6.0, horizon=100)
    controller.update(12.0, n_steps=10)
    # 12/6 - 1 = 1, clipped to 0.2: 0.05 * (1 + 0.2 * 10/100) = 0.051
    assert controller.value == pytest.approx(0.051)
    controller.update(5.4, n_steps=10)
    # 5.4/6 - 1 = -0.1: 0.051 * (1 - 0.1 * 10/100) = 0.05049
    assert controller.value == pytest.approx(0.05049)


def test_response_mask_stops_after_the_first_eos():
    eos, pad = 2, 0
    responses = torch.tensor(
        [
            [5, 2, 0, 0],  # answer, EOS, padding
            [5, 6, 7, 8],  # ran to the limit
            [2, 0, 0, 0],  # empty answer: only the EOS counts
            [5, 0, 6, 2],  # a pad token sampled mid-answer is an action
            [5, 2, 7, 2],  # whatever follows the first EOS is not
        ]
    )
    expected = t([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    assert torch.equal(response_mask(responses, eos, pad), expected)
    # a tokenizer whose pad is its EOS
    assert torch.equal(response_mask(torch.tensor([[5, 2, 2]]), 2, 2), t([[1, 1, 0]]))


def test_length_guard_stops_answers_that_grow_to_the_limit():
    guard = LengthGuard(bound=15.2, patience=2)  # 0.95 * 16 tokens
    guard.check(10.0, 1)
    guard.check(16.0, 2)
    guard.check(12.0, 3)  # back under the bound: the count starts again
    guard.check(16.0, 4)
    with pytest.raises(TrainingDiverged, match="response_length"):
        guard.check(15.5, 5)
    # a policy that filled the limit from the first update did not drift
    always_long = LengthGuard(bound=15.2, patience=2)
    for update in range(1, 6):
        always_long.check(16.0, update)


def test_prompt_batches_split_each_pass_between_processes():
    ranks = [prompt_batches(5, 2, processes=2, rank=r, seed=0) for r in range(2)]
    picks = [[next(batches) for _ in range(5)] for batches in ranks]
    assert not set(picks[0][0]) & set(picks[1][0])
    # 5 updates * 2 processes * 2 prompts = 4 full passes over the 5 prompts
    flat = [i for rank in picks for batch in rank for i in batch]
    assert sorted(flat) == sorted(list(range(5)) * 4)


# --- training ---------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """These tests share two cores with other processes; torch's OpenMP threads then spin
    at every barrier and run several times slower than one thread does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_model(base_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("ppo") / "tiny", tokenizer_from=base_model_path)


def plain_words(prompts: list[str], responses: list[str]) -> list[float]:
    """Share of the answer's characters that are ASCII letters or spaces."""
    return [
        sum(c.isascii() and (c.isalpha() or c == " ") for c in r) / max(len(r), 1)
        for r in responses
    ]


def tiny_config(model: Path, adapters_dir: Path, **changes: Any) -> PPOConfig:
    # The random model's next-token distribution is nearly flat (entropy ~ln 49152); at
    # temperature 0.07 it is peaked, so LoRA's small logit shifts change what is sampled.
    config = PPOConfig(
        base_model=str(model),
        adapters_dir=str(adapters_dir),
        total_updates=16,
        batch_size=8,
        mini_batch_size=4,
        max_new_tokens=8,
        temperature=0.07,
        learning_rate=2e-3,
        lora_r=8,
        lora_alpha=16,
        device="cpu",
        data_snapshot="test-prompts",
    )
    return replace(config, **changes)


@pytest.fixture(scope="module")
def small_task(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainResult, MemoryReporter, PPOConfig]:
    config = tiny_config(tiny_model, tmp_path_factory.mktemp("adapters"), version="ppo-small")
    reporter = MemoryReporter()
    return main(config, PROMPTS, plain_words, reporter), reporter, config


def test_small_task_reward_rises_while_kl_stays_bounded(small_task):
    result, reporter, config = small_task
    series = reporter.series
    assert [row["step"] for row in series] == [float(n) for n in range(1, 17)]
    assert reporter.done == reporter.total == 16 and result.steps == 16
    start = statistics.mean(row["reward_mean"] for row in series[:2])
    end = statistics.median(row["reward_mean"] for row in series[-6:])
    assert end > 0.8 and end > start + 0.3, [round(row["reward_mean"], 2) for row in series]
    assert series[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # a fresh LoRA is the reference
    # bounded: near the controller's target, nowhere near the kl_stop guard
    assert max(row["kl"] for row in series) < 2 * config.target_kl < config.kl_stop
    expected = {
        "reward_mean", "reward_std", "kl", "kl_coef", "entropy", "clip_fraction",
        "value_clip_fraction", "approx_kl", "policy_loss", "value_loss", "response_length",
        "seconds", "rollout_seconds", "scoring_seconds", "optimise_seconds",
    }  # fmt: skip
    assert expected <= set(series[-1])
    assert all(math.isfinite(v) for row in series for v in row.values())
    parts = ("rollout_seconds", "scoring_seconds", "optimise_seconds")
    assert all(row[p] > 0 for row in series for p in parts)
    assert all(sum(row[p] for p in parts) <= row["seconds"] + 1e-6 for row in series)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model: Path) -> Path:
    from ml.models import smollm2_gguf
    from tests.gguf_tiny import export_tiny_llama

    folder, name = smollm2_gguf()
    return export_tiny_llama(
        tiny_model, tokenizer_gguf=folder / name, out=tiny_model.parent / "tiny.gguf"
    )


@pytest.fixture(scope="module")
def small_task_fast(
    tiny_model: Path, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainResult, MemoryReporter, PPOConfig]:
    """The same task with rollouts sampled by llama.cpp from the policy's current LoRA."""
    config = tiny_config(
        tiny_model,
        tmp_path_factory.mktemp("adapters-fast"),
        version="ppo-small-fast",
        rollout_engine="llamacpp",
        rollout_gguf=str(tiny_gguf),
        rollout_threads=1,
    )
    reporter = MemoryReporter()
    return main(config, PROMPTS, plain_words, reporter), reporter, config


def test_fast_rollouts_learn_the_small_task_too(small_task_fast):
    result, reporter, config = small_task_fast
    series = reporter.series
    assert len(series) == 16 and result.steps == 16
    start = statistics.mean(row["reward_mean"] for row in series[:2])
    end = statistics.median(row["reward_mean"] for row in series[-6:])
    # A little below the torch-sampled bar (0.8): llama.cpp's samples, and so the curve,
    # depend on the CPU's kernels (0.79 on one AVX2 machine).
    assert end > 0.7 and end > start + 0.3, [round(row["reward_mean"], 2) for row in series]
    # llama.cpp sampled, torch scored: a fresh LoRA is still exactly the reference policy
    assert series[0]["kl"] == pytest.approx(0.0, abs=1e-4)
    assert max(row["kl"] for row in series) < 2 * config.target_kl < config.kl_stop
    assert adapters.verify(result.path, need_gguf=True).algorithm == "ppo"


def test_fast_rollouts_follow_the_policy_as_it_trains(
    tiny_model: Path, tiny_gguf: Path, tmp_path: Path
):
    """Each batch is sampled with the LoRA as it is now, not as it was at the start."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ml.training.rollouts import LlamaCppRollouts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    policy = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    engine = LlamaCppRollouts(
        tiny_gguf,
        max_new_tokens=6,
        temperature=0.0,  # greedy: comparable with torch's greedy answer
        top_k=0,
        top_p=1.0,
        eos_id=tokenizer.eos_token_id,
        pad_id=tokenizer.pad_token_id,
        seed=0,
        threads=1,
    )
    query = torch.tensor([encode_prompt(tokenizer, PROMPTS[0], 64)])
    mask = torch.ones_like(query)

    def train_a_step(seed: int) -> list[int]:
        """Moves the LoRA far (so no near-tie decides) and returns torch's greedy answer."""
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, parameter in policy.named_parameters():
                if "lora_" in name:
                    parameter.normal_(0, 1.0)
            out = policy.generate(
                input_ids=query,
                attention_mask=mask,
                max_new_tokens=6,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        return out[0, query.shape[1] :].tolist()

    expected_first = train_a_step(1)
    first = engine.sample(policy, query, mask)[0, :6].tolist()
    expected_second = train_a_step(2)
    second = engine.sample(policy, query, mask)[0, :6].tolist()
    engine.close()
    assert expected_first != expected_second
    assert first == expected_first and second == expected_second


def test_small_task_writes_an_adapter_that_loads(small_task, tiny_model: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, _, config = small_task
    assert result.path == Path(config.adapters_dir) / "ppo-small"
    manifest = adapters.verify(result.path)
    assert manifest.algorithm == "ppo" and manifest.parent == adapters.BASE
    assert manifest.base_model == str(tiny_model) and manifest.data_snapshot == "test-prompts"
    assert manifest.config["temperature"] == 0.07
    assert manifest.metrics["updates"] == 16
    assert manifest.metrics["reward_mean_end"] > manifest.metrics["reward_mean_start"]
    assert [p.name for p in Path(config.adapters_dir).iterdir()] == ["ppo-small"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), result.path)
    trained = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert trained and any(p.abs().sum() > 0 for p in trained)


def test_continues_from_a_parent_adapter(small_task, tiny_model: Path, tmp_path: Path):
    parent, _, _ = small_task
    config = tiny_config(
        tiny_model, tmp_path, parent_adapter=str(parent.path), total_updates=2, version="child"
    )
    reporter = MemoryReporter()
    result = main(config, PROMPTS, plain_words, reporter)
    # the policy starts where the parent ended, far above the base model's first update
    assert reporter.series[0]["reward_mean"] > 0.7
    assert adapters.verify(result.path).parent == "ppo-small"


def test_an_existing_version_fails_before_training(small_task):
    _, _, config = small_task
    reporter = MemoryReporter()
    with pytest.raises(FileExistsError):
        main(replace(config, total_updates=1), PROMPTS, plain_words, reporter)
    assert reporter.series == []


def test_a_runaway_kl_stops_the_run_and_saves_nothing(tiny_model: Path, tmp_path: Path):
    config = tiny_config(tiny_model, tmp_path, learning_rate=5e-2, total_updates=6)
    reporter = MemoryReporter()
    with pytest.raises(TrainingDiverged, match="kl"):
        main(config, PROMPTS, plain_words, reporter)
    assert reporter.series and list(tmp_path.iterdir()) == []


def test_a_non_finite_reward_stops_the_run(tiny_model: Path, tmp_path: Path):
    config = tiny_config(tiny_model, tmp_path, total_updates=2)
    with pytest.raises(TrainingDiverged, match="reward"):
        main(config, PROMPTS, lambda p, r: [math.nan] * len(r))
    assert list(tmp_path.iterdir()) == []


class StopAfterFirstUpdate(MemoryReporter):
    def log(self, step: int, metrics: dict[str, float]) -> None:
        super().log(step, metrics)
        self.stop = True


def test_cancel_between_updates_saves_nothing(tiny_model: Path, tmp_path: Path):
    reporter = StopAfterFirstUpdate()
    with pytest.raises(Cancelled):
        main(tiny_config(tiny_model, tmp_path), PROMPTS, plain_words, reporter)
    assert len(reporter.series) == 1 and reporter.done == 1
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model as the reward job publishes it (one short epoch on a few pairs)."""
    from ml.training import reward

    pairs = [
        PreferencePair(prompt=tuple(p), chosen="Plain words here.", rejected="#$%& 123 !!")
        for p in PROMPTS
    ]
    out = tmp_path_factory.mktemp("reward")
    config = reward.RewardConfig(
        out_dir=str(out),
        version="rm",
        num_train_epochs=1,
        max_length=64,
        eval_fraction=0,
        device="cpu",
    )
    return reward.main(config, pairs).path


def test_command_line_runs_ppo_against_a_reward_model(
    tiny_model: Path, tiny_reward_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from ml.training.ppo import _cli

    config = tmp_path / "cfg.json"
    fields: dict[str, Any] = {
        "base_model": str(tiny_model),
        "adapters_dir": str(tmp_path / "adapters"),
    }
    fields |= {"total_updates": 2, "batch_size": 2, "mini_batch_size": 1, "max_new_tokens": 4}
    fields |= {"device": "cpu", "target_modules": ["q_proj", "v_proj"], "version": "ppo-cli"}
    config.write_text(json.dumps(fields))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:3]))
    _cli(
        [
            "--config",
            str(config),
            "--prompts",
            str(prompts),
            "--reward-model",
            str(tiny_reward_model),
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert len(lines) == 3  # one metrics row per update, then the result
    assert result["steps"] == 2 and result["version"] == "ppo-cli"
    manifest = adapters.verify(Path(result["path"]))
    assert manifest.config["target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_real_ppo_steps_on_smollm2(base_model_path: Path, tmp_path: Path):
    def short_answer(prompts: list[str], responses: list[str]) -> list[float]:
        return [-abs(len(r.split()) - 8) / 8 for r in responses]

    config = PPOConfig(
        base_model=str(base_model_path),
        adapters_dir=str(tmp_path),
        total_updates=2,
        batch_size=2,
        mini_batch_size=2,
        max_new_tokens=16,
        device="cpu",
    )
    reporter = MemoryReporter()
    # Short chats keep the prefill cheap on two CPU cores.
    prompts = [[{"role": "user", "content": f"{q} Answer in one sentence."}] for q in QUESTIONS]
    result = main(config, prompts[:4], short_answer, reporter)
    assert len(reporter.series) == 2
    assert all(math.isfinite(v) for row in reporter.series for v in row.values())
    assert all(0 < row["response_length"] <= 16 for row in reporter.series)
    manifest = adapters.verify(result.path)
    assert manifest.algorithm == "ppo" and manifest.metrics["updates"] == 2
    assert result.version.startswith("ppo-")
