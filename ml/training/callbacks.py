"""The bridge between a TRL trainer and a job's ``Reporter``: metric series, progress, and
cancellation. Every TRL job trains through ``train_reporting``. Imports transformers: job
modules import this inside ``main`` so their configs stay cheap to import."""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from ml.training.common import Cancelled, Reporter, TrainingDiverged


class ReporterCallback(TrainerCallback):
    """Forwards the trainer's logs and progress to ``reporter`` and keeps the series, so a job
    can read first and last values. A stop request (or a loss that is no longer finite) asks
    the trainer to stop after the current step; ``raise_if_stopped`` then turns it into an
    exception, once ``train()`` has returned and nothing was saved."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.series: list[dict[str, float]] = []
        self.cancelled = False
        self.diverged = ""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.reporter.progress(0, state.max_steps)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        metrics = {
            key: float(value)
            for key, value in (logs or {}).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        if not metrics:
            return
        self.series.append(metrics)
        self.reporter.log(state.global_step, metrics)
        loss = metrics.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged = f"the training loss is {loss} at step {state.global_step}"
            control.should_training_stop = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.reporter.progress(state.global_step, state.max_steps)
        if self.reporter.should_stop():
            self.cancelled = True
            control.should_training_stop = True

    def raise_if_stopped(self) -> None:
        if self.cancelled:
            raise Cancelled("the run was cancelled")
        if self.diverged:
            raise TrainingDiverged(self.diverged)

    def values(self, key: str) -> list[float]:
        """The logged series of one metric, in step order."""
        return [row[key] for row in self.series if key in row]

    def last(self, *keys: str) -> dict[str, float]:
        """The last logged value of each key that was logged."""
        return {key: values[-1] for key in keys if (values := self.values(key))}

    def first_and_last(self, *keys: str) -> dict[str, float]:
        """``<key>_first`` and ``<key>_last`` of each logged key."""
        metrics: dict[str, float] = {}
        for key in keys:
            values = self.values(key)
            if values:
                metrics[f"{key}_first"] = values[0]
                metrics[f"{key}_last"] = values[-1]
        return metrics


def train_reporting(trainer: Any, reporter: Reporter) -> ReporterCallback:
    """Runs ``trainer.train()`` with ``reporter`` attached; raises ``Cancelled`` or
    ``TrainingDiverged`` if the run stopped early for either reason."""
    from transformers import PrinterCallback

    callback = ReporterCallback(reporter)
    trainer.add_callback(callback)
    # The reporter is the log sink; the printer would repeat every row on stdout.
    trainer.remove_callback(PrinterCallback)
    if reporter.should_stop():
        raise Cancelled("the run was cancelled")
    trainer.train()
    callback.raise_if_stopped()
    return callback
