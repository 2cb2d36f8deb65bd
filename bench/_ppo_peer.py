"""One contender of bench/ppo_speed.py, in its own process so that its peak RSS is its own.

    .venv/bin/python bench/_ppo_peer.py {ours-torch|ours-fast|trl112-ppo|rloo} SPEC.json

SPEC.json (written by ppo_speed.py) names the policy folder, the reward-model folder, the
prompts, the shared settings and, for ours-fast, the policy's GGUF (rollout_gguf). The last
line on stdout is a JSON object: seconds of every update (warm-up included, in order), peak
RSS, RSS after the imports, mean response length and the library versions. ours-torch and
ours-fast differ only in where the rollouts are sampled (PPOConfig.rollout_engine: torch's
``generate``, or llama.cpp with the policy's current LoRA, on as many threads as torch).
trl112-ppo must run with the throw-away TRL 1.12 first on PYTHONPATH; it imports
``trl.experimental.ppo`` from there.
"""

from __future__ import annotations

import functools
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # after PYTHONPATH, so the throw-away TRL wins over the venv's


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def load_reward_model(folder: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=1, dtype=torch.float32
    )
    return model.eval(), tokenizer


def checkpointed(model: Any) -> bool:
    """Whether any layer recomputes activations in backward (all contenders should not)."""
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())


def lora(spec: dict[str, Any]) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=spec["lora_r"],
        lora_alpha=spec["lora_alpha"],
        lora_dropout=spec["lora_dropout"],
        target_modules=list(spec["target_modules"]),
    )


def run_ours(
    spec: dict[str, Any], prompts: list[list[dict[str, str]]], *, rollout_engine: str
) -> dict[str, Any]:
    import torch

    from ml.training.common import MemoryReporter
    from ml.training.data import prompt_text
    from ml.training.ppo import PPOConfig, encode_prompt, main

    reward_model, tokenizer = load_reward_model(spec["reward_model"])
    # Our reward function sees flattened prompt text; the classifier is scored, as TRL 1.12's
    # PPO scores it, on the policy's chat-template prompt tokens followed by the response.
    prompt_ids = {
        prompt_text(p): encode_prompt(tokenizer, p, spec["max_prompt_tokens"]) for p in prompts
    }
    eos = [tokenizer.eos_token_id]

    def reward_fn(texts: list[str], responses: list[str]) -> list[float]:
        rows = [
            prompt_ids[text] + tokenizer(response, add_special_tokens=False)["input_ids"] + eos
            for text, response in zip(texts, responses, strict=True)
        ]
        width = max(len(row) for row in rows)
        pad = tokenizer.pad_token_id
        ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        with torch.no_grad():
            return reward_model(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()

    reporter = MemoryReporter()
    with tempfile.TemporaryDirectory(prefix="ppo-speed-ours-") as adapters_dir:
        config = PPOConfig(
            base_model=spec["policy"],
            adapters_dir=adapters_dir,
            lora_r=spec["lora_r"],
            lora_alpha=spec["lora_alpha"],
            lora_dropout=spec["lora_dropout"],
            target_modules=tuple(spec["target_modules"]),
            learning_rate=spec["learning_rate"],
            ppo_epochs=spec["ppo_epochs"],
            total_updates=spec["updates_total"],
            batch_size=spec["batch_size"],
            mini_batch_size=spec["mini_batch_size"],
            max_new_tokens=spec["max_new_tokens"],
            temperature=spec["temperature"],
            max_prompt_tokens=spec["max_prompt_tokens"],
            init_kl_coef=spec["kl_coef"],
            kl_stop=1e9,  # guards off: a random policy on a random reward is not a real run
            length_stop_fraction=2.0,
            seed=spec["seed"],
            device="cpu",
            rollout_engine=rollout_engine,
            rollout_gguf=spec["rollout_gguf"] if rollout_engine == "llamacpp" else "",
            rollout_threads=spec["threads"],
        )
        main(config, prompts, reward_fn, reporter)
    result: dict[str, Any] = {
        "seconds": [row["seconds"] for row in reporter.series],
        "phases": {
            phase: [row[f"{phase}_seconds"] for row in reporter.series]
            for phase in ("rollout", "scoring", "optimise")
        },
        "response_tokens": statistics.mean(row["response_length"] for row in reporter.series),
        "rollout_engine": rollout_engine,
    }
    if rollout_engine == "llamacpp":
        import llama_cpp

        result["rollout_gguf"] = config.rollout_gguf
        result["llama_cpp"] = llama_cpp.__version__
    return result


class _Clock:
    """A TrainerCallback (built lazily: transformers is imported in the worker only) that
    records the seconds of every optimizer step and the logged mean completion length."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.last = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                now = time.perf_counter()
                clock.steps.append(now - clock.last)
                clock.last = now

            def on_log(self, args, state, control, logs=None, **kwargs):
                clock.logs.append(dict(logs or {}))

        self.last = 0.0
        self.steps: list[float] = []
        self.logs: list[dict[str, Any]] = []
        self.callback = Callback()


def run_trl112_ppo(spec: dict[str, Any], prompts: list[list[dict[str, str]]]) -> dict[str, Any]:
    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from ml.training.ppo import encode_prompt

    if not trl.__version__.startswith("1.12"):
        raise RuntimeError(f"expected TRL 1.12 on PYTHONPATH, imported {trl.__version__}")
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    reward_model, tokenizer = load_reward_model(spec["reward_model"])
    tokenizer.padding_side = "left"
    policy = AutoModelForCausalLM.from_pretrained(spec["policy"], dtype=torch.float32)
    # TRL's recipe: the value model is a second sequence classifier, trained in full.
    value_model = AutoModelForSequenceClassification.from_pretrained(
        spec["reward_model"], num_labels=1, dtype=torch.float32
    )
    dataset = Dataset.from_list(
        [{"input_ids": encode_prompt(tokenizer, p, spec["max_prompt_tokens"])} for p in prompts]
    )
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="ppo-speed-trl112-") as output_dir:
        args = PPOConfig(
            output_dir=output_dir,
            per_device_train_batch_size=spec["batch_size"],
            gradient_accumulation_steps=1,
            num_mini_batches=spec["batch_size"] // spec["mini_batch_size"],
            num_ppo_epochs=spec["ppo_epochs"],
            local_rollout_forward_batch_size=spec["batch_size"],
            total_episodes=spec["batch_size"] * spec["updates_total"],
            response_length=spec["max_new_tokens"],
            temperature=spec["temperature"],
            stop_token="eos",
            learning_rate=spec["learning_rate"],
            kl_coef=spec["kl_coef"],
            num_sample_generations=0,
            gradient_checkpointing=False,
            bf16=False,
            fp16=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            seed=spec["seed"],
        )
        trainer = PPOTrainer(
            args=args,
            processing_class=tokenizer,
            model=policy,
            ref_model=None,
            reward_model=reward_model,
            train_dataset=dataset,
            value_model=value_model,
            peft_config=lora(spec),
            callbacks=[clock.callback],
        )
        trainer.train()
        checkpointing = checkpointed(trainer.model)
    eos_per_batch = [row["val/num_eos_tokens"] for row in clock.logs if "val/num_eos_tokens" in row]
    return {
        "seconds": clock.steps,
        "eos_share": statistics.mean(eos_per_batch) / spec["batch_size"] if eos_per_batch else None,
        "activation_checkpointing": checkpointing,
    }


def run_rloo(spec: dict[str, Any], prompts: list[list[dict[str, str]]]) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import RLOOConfig, RLOOTrainer

    reward_model, tokenizer = load_reward_model(spec["reward_model"])
    policy = AutoModelForCausalLM.from_pretrained(spec["policy"], dtype=torch.float32)
    generations = spec["rloo_generations"]
    steps_per_update = spec["batch_size"] // spec["mini_batch_size"]
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="ppo-speed-rloo-") as output_dir:
        # One update: batch_size completions (batch_size / generations prompts) sampled once,
        # then batch_size / mini_batch_size optimizer steps of mini_batch_size completions.
        args = RLOOConfig(
            output_dir=output_dir,
            per_device_train_batch_size=spec["mini_batch_size"],
            gradient_accumulation_steps=1,
            steps_per_generation=steps_per_update,
            num_generations=generations,
            num_iterations=spec["ppo_epochs"],
            max_completion_length=spec["max_new_tokens"],
            temperature=spec["temperature"],
            top_k=0,
            top_p=1.0,
            beta=spec["kl_coef"],
            learning_rate=spec["learning_rate"],
            max_steps=steps_per_update * spec["updates_total"],
            gradient_checkpointing=False,
            bf16=False,
            fp16=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            seed=spec["seed"],
        )
        trainer = RLOOTrainer(
            model=policy,
            reward_funcs=reward_model,
            args=args,
            train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
            processing_class=tokenizer,
            reward_processing_classes=tokenizer,
            peft_config=lora(spec),
            callbacks=[clock.callback],
        )
        trainer.train()
        checkpointing = checkpointed(trainer.model)
    updates = [
        sum(clock.steps[i : i + steps_per_update])
        for i in range(0, len(clock.steps), steps_per_update)
    ]
    lengths = [
        row["completions/mean_length"] for row in clock.logs if "completions/mean_length" in row
    ]
    return {
        "seconds": updates,
        "response_tokens": statistics.mean(lengths) if lengths else None,
        "optimizer_steps": len(clock.steps),
        "activation_checkpointing": checkpointing,
    }


Contender = Callable[[dict[str, Any], list[list[dict[str, str]]]], dict[str, Any]]
CONTENDERS: dict[str, Contender] = {
    "ours-torch": functools.partial(run_ours, rollout_engine="torch"),
    "ours-fast": functools.partial(run_ours, rollout_engine="llamacpp"),
    "trl112-ppo": run_trl112_ppo,
    "rloo": run_rloo,
}


def main() -> None:
    name, spec_path = sys.argv[1], Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    import torch
    import transformers

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    prompts = [
        json.loads(line)["prompt"] for line in Path(spec["prompts"]).read_text().splitlines()
    ]
    rss_imports = rss_mb()
    started = time.perf_counter()
    result = CONTENDERS[name](spec, prompts)
    import peft
    import trl

    result.update(
        {
            "contender": name,
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_imports_mb": rss_imports,
            "wall_seconds": time.perf_counter() - started,
            "threads": torch.get_num_threads(),
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "peft": peft.__version__,
                "trl": trl.__version__,
                "trl_path": str(Path(trl.__file__).parent),
            },
        }
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
