from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.references.services import InvalidReferences
from apps.references.synthesis import synthetic_requirements_generate


class Command(BaseCommand):
    help = (
        "Writes question/answer pairs from the library's requirement sentences and checks "
        "each automatically (it must retrieve its source, keep its values, repeat no other). "
        "Those that pass wait in the SMEs' synthetic queue; a share is held out to measure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=50, help="sentences to write pairs for")
        parser.add_argument("--document", type=int, default=None, help="a document id")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--queue", action="store_true", help="run it on a worker instead")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["queue"]:
            from workers.references import generate_synthetic

            generate_synthetic.delay(options["limit"], options["document"])
            self.stdout.write("queued")
            return
        try:
            result = synthetic_requirements_generate(
                limit=options["limit"], document_id=options["document"], seed=options["seed"]
            )
        except InvalidReferences as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(
                f"{result.passed} of {result.attempted} pairs passed their checks "
                f"({result.heldout} held out to measure); failed: {dict(result.failed)}"
            )
