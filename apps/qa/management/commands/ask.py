from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.answering.engine import get_generator
from apps.qa import services
from apps.qa.presenters import answer_json
from ml.jsonl import JsonlError, read_records


class Command(BaseCommand):
    help = "Answer a question (or one per line of a JSON Lines file) with citations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("question", nargs="?", help="the question")
        parser.add_argument(
            "--file", type=Path, help="JSON Lines, one object with a 'question' per line"
        )
        parser.add_argument("--json", action="store_true", help="print JSON (one object per line)")

    def handle(self, *args: object, **options: Any) -> None:
        questions = self._questions(options)
        get_generator(watch=False)  # load the model once, up front
        for question in questions:
            try:
                answer = services.question_submit(question=question, user=None, session_key="cli")
            except services.InvalidQuestion as exc:
                record: dict[str, object] = {"question": question, "error": str(exc)}
            else:
                record = answer_json(services.answer_generate(answer_id=answer.pk))
            if options["json"]:
                self.stdout.write(json.dumps(record, ensure_ascii=False))
            else:
                self._print(record)

    def _questions(self, options: dict[str, object]) -> list[str]:
        path = options.get("file")
        if path is None:
            if not options.get("question"):
                raise CommandError("give a question, or --file questions.jsonl")
            return [str(options["question"])]
        path = Path(str(path))
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            return read_records(path, lambda record: str(record["question"]), what="a question")
        except JsonlError as exc:
            raise CommandError(f'{exc} (one {{"question": ...}} object per line)') from exc

    def _print(self, record: dict[str, Any]) -> None:
        self.stdout.write(f"Q: {record['question']}")
        self.stdout.write(f"A: {record.get('answer') or record.get('error')}")
        for citation in record.get("citations", []):
            self.stdout.write(
                f"   - {citation['document']}, p. {citation['page']} §{citation['section']}"
            )
        self.stdout.write("")
