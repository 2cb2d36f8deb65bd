from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.training.services.data import preferences_build
from apps.training.services.sft import sft_build


class Command(BaseCommand):
    help = (
        "Builds a snapshot of preference pairs from better answers, scored answers and "
        "sampled answers (and with --sft, the SFT set from validated references)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-margin", type=float, default=None)
        parser.add_argument("--sft", action="store_true", help="build the SFT set instead")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sft"]:
            snapshot = sft_build()
        else:
            snapshot = preferences_build(min_margin=options["min_margin"])
        result = {
            "snapshot": snapshot.pk,
            "kind": snapshot.kind,
            "label": snapshot.label,
            "size": snapshot.size,
            "counts": snapshot.counts,
            "path": snapshot.path,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(
                f"{snapshot.label}: {snapshot.size} rows {snapshot.counts} -> {snapshot.path}"
            )
