from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.references.services import InvalidReferences, references_import


class Command(BaseCommand):
    help = (
        "Imports reference question/answer pairs from a JSON Lines file (the format of "
        "shared/eval/sample-qa.jsonl) into a named set. Importing the same file again "
        "changes nothing; one bad line stops the import and nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--set", dest="set_name", default="validation")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = references_import(path=options["file"], set_name=options["set_name"])
        except InvalidReferences as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(
                f"{result.set_name}: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged"
            )
