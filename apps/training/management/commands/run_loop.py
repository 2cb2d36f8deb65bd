from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.training.models import LoopRun, TrainingRun
from apps.training.services.loop import LoopBusy, loop_run


class Command(BaseCommand):
    help = (
        "Runs the learning loop now, in this process. --algorithm sft: the supervised stage "
        "(synthetic pairs from the library, checked; LoRA-SFT; evaluate; promote through the "
        "gate), which bootstraps a new library. Otherwise the nightly chain: the supervised "
        "stage first when the library changed, then sample and judge answers, build pairs, "
        "train the reward model, PPO (or dpo|kto), evaluate, promote through the gate."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm", choices=[a for a in TrainingRun.Algorithm.values if a != "reward"]
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            loop = loop_run(algorithm=options["algorithm"])
        except LoopBusy as exc:
            raise CommandError(str(exc)) from exc
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
