from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.judging.judge import get_judge
from ml.jsonl import JsonlError, numbered_lines, read_text
from ml.judging import JudgeError, JudgeRequest, Verdict


def _item(number: int, line: str) -> JudgeRequest:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"line {number}: not JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"line {number}: expected a JSON object")
    for name in ("question", "response"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise ValueError(f"line {number}: '{name}' is missing or empty")
    reference = record.get("reference", record.get("reference_answer"))
    if reference is not None and not isinstance(reference, str):
        raise ValueError(f"line {number}: 'reference' must be text")
    return JudgeRequest(
        question=record["question"],
        response=record["response"],
        reference=reference or None,
        key_facts=tuple(str(f) for f in record.get("key_facts") or ()),
        passages=tuple(str(p) for p in record.get("passages") or ()),
        answerable=bool(record.get("answerable", True)),
        custom_id=f"line-{number}",
    )


def _shown(verdict: Verdict) -> dict[str, Any]:
    return {
        "score": verdict.score,
        "comment": verdict.comment,
        "backend": verdict.backend,
        "prompt_version": verdict.prompt_version,
    }


class Command(BaseCommand):
    help = (
        "Scores a response with the configured judge (JUDGE_BACKEND). Either --question and "
        "--response (and --reference), or --file with one JSON object a line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--question")
        parser.add_argument("--response")
        parser.add_argument("--reference")
        parser.add_argument("--file", type=Path)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        judge = get_judge()
        if options["file"]:
            self._file(judge, options["file"], as_json=options["json"])
            return
        if not options["question"] or not options["response"]:
            raise CommandError("Give --question and --response, or --file items.jsonl.")
        request = JudgeRequest(
            question=options["question"],
            response=options["response"],
            reference=options["reference"] or None,
        )
        try:
            verdict = judge.judge(request)
        except JudgeError as exc:
            raise CommandError(f"judging failed: {exc}") from exc
        self._print(_shown(verdict), as_json=options["json"])

    def _file(self, judge: Any, path: Path, *, as_json: bool) -> None:
        try:
            text = read_text(path)
        except JsonlError as exc:
            raise CommandError(str(exc)) from exc
        slots: list[dict[str, Any] | int] = []  # a result, or the index of a request
        requests: list[JudgeRequest] = []
        for number, line in numbered_lines(text):
            try:
                requests.append(_item(number, line))
                slots.append(len(requests) - 1)
            except ValueError as exc:
                slots.append({"line": number, "error": str(exc)})
        outcomes = judge.judge_many(requests) if requests else []
        failed = 0
        for slot in slots:
            if isinstance(slot, dict):
                failed += 1
                self._print(slot, as_json=as_json)
                continue
            outcome = outcomes[slot]
            if isinstance(outcome, Verdict):
                self._print(_shown(outcome), as_json=as_json)
            else:
                failed += 1
                self._print({"error": f"{type(outcome).__name__}: {outcome}"}, as_json=as_json)
        if failed:
            raise CommandError(f"{failed} of {len(slots)} items could not be judged")

    def _print(self, result: dict[str, Any], *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        elif "error" in result:
            self.stdout.write(f"error: {result['error']}")
        else:
            self.stdout.write(f"{result['score']:g}/5  {result['comment']}")
