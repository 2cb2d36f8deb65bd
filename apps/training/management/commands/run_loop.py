from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.training.models import LoopRun, TrainingRun
from apps.training.services.loop import loop_run


class Command(BaseCommand):
    help = (
        "Runs the nightly chain now, in this process: sample and judge answers, build pairs, "
        "train the reward model, PPO (or --algorithm dpo|kto), evaluate the candidate and the "
        "served adapter, promote if the gate passes. Prints each step's result."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm", choices=[a for a in TrainingRun.Algorithm.values if a != "reward"]
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        loop = loop_run(algorithm=options["algorithm"])
        result = {
            "loop": loop.pk,
            "status": loop.status,
            "served_before": loop.served_before,
            "candidate": loop.candidate,
            "gate": loop.gate,
            "steps": loop.steps,
            "error": loop.error,
        }
        if options["json"]:
            for step in loop.steps:
                self.stdout.write(json.dumps(step))
            self.stdout.write(json.dumps(result))
        else:
            for step in loop.steps:
                self.stdout.write(f"{step['step']:20} {step['status']:7} {step['seconds']:8.1f}s")
            self.stdout.write(f"loop #{loop.pk}: {loop.status} {loop.error}")
        if loop.status == LoopRun.Status.FAILED:
            raise CommandError(loop.error)
