from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.adapters.models import AdapterVersion
from apps.training.services.evaluation import METRICS, InvalidEvaluation, evaluation_run
from ml.adapters import BASE


class Command(BaseCommand):
    help = (
        "Answers every question of a reference set with an adapter (or base), judges the "
        "answers and prints the figures the promotion gate compares."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--set", dest="set_name", default="validation")
        parser.add_argument("--adapter", default=BASE, help="an adapter version, or base")
        parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        adapter = options["adapter"]
        if adapter != BASE and not AdapterVersion.objects.filter(version=adapter).exists():
            raise CommandError(f"no adapter {adapter!r} (see the adapter registry in admin)")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            evaluation = evaluation_run(
                adapter_version=adapter, set_name=options["set_name"], limit=options["limit"]
            )
        except InvalidEvaluation as exc:
            raise CommandError(str(exc)) from exc
        shown = (*METRICS[:2], "ai_score_low", "ai_score_high", *METRICS[2:])
        figures = {name: evaluation.metrics.get(name) for name in shown}
        if options["json"]:
            self.stdout.write(json.dumps(figures))
        else:
            for name, value in figures.items():
                self.stdout.write(f"{name:22} {value}")
