"""Data and settings shared by the tests of the LoRA policy jobs (SFT, DPO, KTO): four facts,
each asked about with its passage, and a config that trains in seconds on ``tiny_model``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.training.data import Message

FACTS = [
    ("minimum clear width of an exit corridor", "1120 mm"),
    ("maximum slope of an accessible ramp", "1 in 12"),
    ("minimum headroom over a stairway", "2030 mm"),
    ("minimum height of a guard rail", "1070 mm"),
]


def fact_prompt(subject: str, value: str) -> tuple[Message, ...]:
    """The question about one fact, with the passage that answers it as [1]."""
    return (
        {"role": "system", "content": "Answer from the passages and cite them."},
        {"role": "user", "content": f"[1] The {subject} is {value}.\n\nWhat is the {subject}?"},
    )


def grounded_answer(subject: str, value: str) -> str:
    return f"The {subject} is {value} [1]."


def tiny_run(tiny_model: Path, adapters_dir: Path, version: str) -> dict[str, Any]:
    """Config fields every job's test run shares: a small LoRA on the tiny model."""
    return {
        "base_model": str(tiny_model),
        "adapters_dir": str(adapters_dir),
        "version": version,
        "lora_r": 8,
        "lora_alpha": 16,
        "data_snapshot": "facts-4",
    }
