from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.training.common import Cancelled, MemoryReporter
from ml.training.data import PreferencePair
from ml.training.reward import RewardConfig, load_reward_scorer, main

SUBJECTS = [
    ("minimum clear width of an exit corridor", "1120 mm"),
    ("maximum slope of an accessible ramp", "1 in 12"),
    ("minimum headroom over a stairway", "2030 mm"),
    ("design live load of an office floor", "2.4 kPa"),
    ("minimum concrete cover for a footing", "75 mm"),
    ("maximum spacing of fire extinguishers", "23 m"),
    ("minimum height of a guard rail", "1070 mm"),
    ("maximum riser height of a stair", "180 mm"),
    ("minimum tread depth of a stair", "280 mm"),
    ("minimum door clear opening", "815 mm"),
    ("maximum travel distance to an exit", "60 m"),
    ("minimum fire rating of a shaft wall", "2 hours"),
    ("minimum roof slope for drainage", "2 percent"),
    ("maximum deflection of a floor beam", "L/360"),
    ("minimum ventilation rate of a classroom", "7.4 L/s per person"),
    ("minimum lap length of a reinforcing bar", "48 bar diameters"),
    ("maximum water heater temperature", "49 degrees C"),
    ("minimum ceiling height of a corridor", "2290 mm"),
    ("maximum noise level in an office", "45 dBA"),
    ("minimum illuminance on a work plane", "500 lux"),
]
OFF_TOPIC = [
    "I enjoy hiking in the mountains on weekends.",
    "Pizza is best with fresh basil.",
    "The weather was nice yesterday.",
    "Cats sleep for most of the day.",
    "My favourite colour is green.",
]


def synthetic_pairs() -> list[PreferencePair]:
    """Chosen states the requirement from the passage with a citation; rejected is off-topic
    or cut off mid-sentence."""
    pairs = []
    for index, (subject, value) in enumerate(SUBJECTS):
        prompt = (
            {"role": "system", "content": "Answer from the numbered passages and cite them."},
            {
                "role": "user",
                "content": f"Passages:\n[1] (UFC 3-600-01)\nThe {subject} shall be {value}.\n\n"
                f"Question: What is the {subject}?",
            },
        )
        chosen = f"The {subject} is {value} [1]."
        pairs.append(PreferencePair(prompt, chosen, OFF_TOPIC[index % len(OFF_TOPIC)]))
        pairs.append(PreferencePair(prompt, chosen, f"The {subject.split()[0]}"))
    return pairs


def test_the_reward_model_learns_to_prefer_grounded_answers(tmp_path: Path):
    pairs = synthetic_pairs()
    config = RewardConfig(
        out_dir=str(tmp_path / "reward"),
        version="r1",
        learning_rate=1e-4,
        num_train_epochs=2,
        data_snapshot="synthetic-40",
    )
    reporter = MemoryReporter()
    result = main(config, pairs, reporter)

    metrics = result.metrics
    assert metrics["heldout_pairs"] == 8 and metrics["train_pairs"] == 32
    assert metrics["heldout_accuracy_after"] >= 0.75
    assert metrics["heldout_accuracy_after"] > metrics["heldout_accuracy_before"]
    assert metrics["loss_last"] < metrics["loss_first"]
    assert result.steps == 8 and reporter.done == reporter.total == 8
    assert any("accuracy" in row for row in reporter.series)

    assert result.path == tmp_path / "reward" / "r1"
    assert sorted(p.name for p in (tmp_path / "reward").iterdir()) == ["r1"]
    record = json.loads((result.path / "manifest.json").read_text())
    assert record["algorithm"] == "reward" and record["data_snapshot"] == "synthetic-40"
    assert record["metrics"] == metrics and "model.safetensors" in record["files"]

    # Answers to questions the model never saw.
    score = load_reward_scorer(result.path, device="cpu")
    fresh = [
        ("maximum spacing of sprinkler heads", "4.6 m"),
        ("minimum depth of a frost footing", "1.2 m"),
    ]
    prompts = [
        f"[1] The {subject} shall be {value}.\n\nQuestion: What is the {subject}?"
        for subject, value in fresh
    ]
    chosen = score(prompts, [f"The {subject} is {value} [1]." for subject, value in fresh])
    rejected = score(prompts, ["Pizza is best with fresh basil.", "The minimum"])
    assert sum(chosen) / len(chosen) > sum(rejected) / len(rejected)


def test_long_prompts_keep_the_answer_and_the_question():
    from transformers import AutoTokenizer

    from ml.embeddings import default_model_path
    from ml.training.reward import pair_encoder

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    encode = pair_encoder(tokenizer, 128)
    prompt = "filler passage text. " * 400 + "Question: what is the minimum headroom?"
    ids = encode(prompt, "The minimum headroom is 2030 mm [1].")
    text = tokenizer.decode(ids)
    assert len(ids) == 128 and text.startswith("[CLS]") and text.endswith("[SEP]")
    assert "what is the minimum headroom? [SEP] the minimum headroom is 2030 mm [ 1 ]." in text
    # An answer longer than the room keeps its start and half the room.
    ids = encode(prompt, "word " * 300)
    assert len(ids) == 128 and tokenizer.decode(ids).count("word") == (128 - 3) // 2


def test_no_pairs_and_a_missing_backbone_fail_before_writing(tmp_path: Path):
    out = tmp_path / "reward"
    with pytest.raises(ValueError, match="no preference pairs to train on"):
        main(RewardConfig(out_dir=str(out)), [])
    with pytest.raises(FileNotFoundError, match="backbone not found"):
        main(RewardConfig(out_dir=str(out), backbone=str(tmp_path / "nowhere")), synthetic_pairs())
    assert not out.exists()


def test_a_cancelled_run_writes_nothing(tmp_path: Path):
    class StopAfterOneStep(MemoryReporter):
        def should_stop(self) -> bool:
            return self.done >= 1

    out = tmp_path / "reward"
    reporter = StopAfterOneStep()
    config = RewardConfig(out_dir=str(out), eval_fraction=0.0, per_device_train_batch_size=2)
    with pytest.raises(Cancelled):
        main(config, synthetic_pairs()[:8], reporter)
    assert reporter.done == 1 and reporter.total == 40
    assert not out.exists()
