"""Training tests run on a tiny randomly initialised Llama (seconds per run) that shares
SmolLM2's tokenizer and chat template, with small settings for every algorithm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.answering import engine
from apps.qa.models import Answer, Conversation
from apps.references.services import references_import
from tests import support

SMALL = {
    "reward": {"num_train_epochs": 1, "max_length": 256, "per_device_train_batch_size": 4},
    "sft": {"num_train_epochs": 1, "max_length": 512, "lora_r": 4, "lora_alpha": 8},
    "ppo": {
        "total_updates": 2,
        "batch_size": 2,
        "mini_batch_size": 1,
        "ppo_epochs": 1,
        "max_new_tokens": 8,
        "max_prompt_tokens": 256,
        "lora_r": 4,
        "lora_alpha": 8,
    },
    "dpo": {"num_train_epochs": 1, "max_length": 512, "lora_r": 4, "lora_alpha": 8},
    "kto": {"num_train_epochs": 1, "max_length": 512, "lora_r": 4, "lora_alpha": 8},
}


@pytest.fixture
def tiny_generator(settings, tiny_model: Path, tmp_path: Path) -> Iterator[Path]:
    settings.GENERATOR_BACKEND = "transformers"
    settings.GENERATOR_MODEL_PATH = str(tiny_model)
    settings.GENERATION_MAX_NEW_TOKENS = 16
    settings.TRAINING_DEFAULTS = SMALL
    settings.ADAPTERS_DIR = tmp_path / "adapters"
    settings.REWARD_MODELS_DIR = tmp_path / "reward_models"
    engine.reset_generator()
    yield tiny_model
    engine.reset_generator()


def feedback_history(count: int = 5) -> None:
    """Low-rated answers with users' better answers that an SME accepted: real preference
    data (an unreviewed better answer never trains)."""
    user = support.make_user("eve-trainer", "engineers")
    sme = support.make_user("sam-trainer", "smes")
    from apps.feedback.services import feedback_submit
    from apps.review.services import better_answer_decide

    for n in range(count):
        prompt = [
            {"role": "system", "content": "Answer from the numbered passages and cite them."},
            {
                "role": "user",
                "content": f"[1] Repair leaks above 10% a year within 30 days.\n\n"
                f"How quickly must leak {n} be repaired?",
            },
        ]
        conversation = Conversation.objects.create(title="q")
        answer = Answer.objects.create(
            conversation=conversation,
            question=f"How quickly must leak {n} be repaired?",
            text="Leaks are bad.",
            status=Answer.Status.DONE,
            prompt_messages=prompt,
            model_name="tiny",
        )
        feedback = feedback_submit(
            answer_id=answer.pk, user=user, score=1, better_answer="Within 30 days [1]."
        )
        better_answer_decide(feedback_id=feedback.pk, reviewer=sme, accept=True)


def reference_sets(tmp_path: Path, count: int = 3) -> None:
    """``count`` validation and ``count`` other training references: the sets share no
    question, since a training reference that repeats a validation question never teaches
    (nor is it sampled)."""
    lines = [line for line in support.EVAL.read_text().splitlines() if '"UFC' in line]
    for set_name, part in (("validation", lines[:count]), ("training", lines[count : 2 * count])):
        path = tmp_path / f"{set_name}.jsonl"
        path.write_text("\n".join(part) + "\n")
        references_import(path=path, set_name=set_name)


def small_settings_env(
    tiny_model: Path, var: Path, tiny_gguf: Path | None = None
) -> dict[str, str]:
    """Settings for a worker on the tiny model; with ``tiny_gguf`` it answers, evaluates
    and samples PPO rollouts with llama.cpp, as the default deployment does."""
    engine = (
        {"GENERATOR_BACKEND": "llamacpp", "GENERATOR_GGUF_PATH": str(tiny_gguf)}
        if tiny_gguf
        else {"GENERATOR_BACKEND": "transformers"}
    )
    return {
        **engine,
        "GENERATOR_MODEL_PATH": str(tiny_model),
        "GENERATION_MAX_NEW_TOKENS": "16",
        # The tiny library holds few of the questions' sentences: the sentence gate would
        # decline them all, and these tests are about the loop, not declines.
        "ANSWER_MIN_SENTENCE_SCORE": "0",
        "TRAINING_DEFAULTS": json.dumps(SMALL),
        "LOOP_SAMPLE_QUESTIONS": "2",
        "LOOP_SAMPLES_PER_QUESTION": "2",
        "LOOP_EVAL_LIMIT": "2",
        # The nightly chain's own tests: the supervised stage is tested on its own.
        "LOOP_SUPERVISED_STAGE": "false",
        "ADAPTER_WATCH": "false",
    }
