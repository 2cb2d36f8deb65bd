"""What every training job returns, and the command line that prints it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainResult:
    """A finished run: ``path`` is the published folder (adapter or reward model)."""

    algorithm: str
    version: str
    path: Path
    metrics: dict[str, float]
    steps: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "version": self.version,
            "path": str(self.path),
            "metrics": self.metrics,
            "steps": self.steps,
        }


def cli(
    config_type: type[Any],
    main: Callable[..., TrainResult],
    read: Callable[[Path], Sequence[Any]],
    argv: Sequence[str] | None = None,
) -> None:
    """``python -m ml.training.<job> --config cfg.json --data data.jsonl``: metric rows as JSON
    lines while training, then the result as one JSON object."""
    import argparse

    from ml.training.common import MemoryReporter

    parser = argparse.ArgumentParser(description=f"Train with a {config_type.__name__}.")
    parser.add_argument("--config", type=Path, required=True, help="the job's config as JSON")
    parser.add_argument("--data", type=Path, required=True, help="training data (JSON Lines)")
    args = parser.parse_args(argv)
    config = config_type(**json.loads(args.config.read_text()))
    result = main(config, read(args.data), MemoryReporter(echo=True))
    print(json.dumps(result.as_dict()))
