from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.references.services import InvalidReferences, synthetic_pairs_generate


class Command(BaseCommand):
    help = (
        "Asks the answer model to write question/answer pairs from random document passages. "
        "They wait in the SMEs' synthetic queue and count only once validated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=10)
        parser.add_argument("--document", type=int, default=None, help="a document id")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--queue", action="store_true", help="run it on a worker instead")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["queue"]:
            from workers.references import generate_synthetic

            generate_synthetic.delay(options["count"], options["document"])
            self.stdout.write("queued")
            return
        try:
            result = synthetic_pairs_generate(
                count=options["count"], document_id=options["document"], seed=options["seed"]
            )
        except InvalidReferences as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(
                f"{result.created} pairs written for review, {result.unusable} replies unusable"
            )
