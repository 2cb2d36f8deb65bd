from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.training.models import TrainingRun
from apps.training.services.runs import InvalidRun, run_create, run_execute


class Command(BaseCommand):
    help = (
        "Trains one run: reward, sft, ppo, dpo or kto, on the latest snapshot unless "
        "--snapshot says otherwise. Runs here unless --queue sends it to the gpu worker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("algorithm", choices=TrainingRun.Algorithm.values)
        parser.add_argument(
            "--config", default="{}", help="settings as JSON, e.g. '{\"learning_rate\": 1e-5}'"
        )
        parser.add_argument("--snapshot", type=int, default=None)
        parser.add_argument(
            "--reward-run", type=int, default=None, help="ppo: the reward model's run"
        )
        parser.add_argument("--parent", default=None, help="adapter version to start from")
        parser.add_argument("--queue", action="store_true")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = json.loads(options["config"])
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not JSON: {exc.msg}") from exc
        if not isinstance(config, dict):
            raise CommandError("--config must be a JSON object")
        try:
            run = run_create(
                algorithm=options["algorithm"],
                config=config,
                snapshot_id=options["snapshot"],
                reward_run_id=options["reward_run"],
                parent_version=options["parent"],
                enqueue=options["queue"],
            )
        except InvalidRun as exc:
            raise CommandError(str(exc)) from exc
        if not options["queue"]:
            run = run_execute(run_id=run.pk)
        result = {
            "run": run.pk,
            "algorithm": run.algorithm,
            "status": run.status,
            "version": run.version,
            "metrics": run.metrics,
            "error": run.error,
        }
        self.stdout.write(json.dumps(result) if options["json"] else f"{result}")
        if run.status in {TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}:
            raise CommandError(f"run #{run.pk} {run.status}: {run.error}")
