"""Gives adapters registered before llama.cpp serving their GGUF LoRA file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.adapters.models import AdapterVersion
from apps.adapters.services import adapter_add_gguf
from apps.answering.engine import hf_model_path
from ml.adapters import GGUF_LORA, AdapterRefused
from ml.gguf_lora import ConversionError


class Command(BaseCommand):
    help = (
        "Write adapter.gguf (llama.cpp's form of the LoRA) into registered adapter folders "
        "that lack it. Prints one JSON object per adapter; exits 1 if any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("versions", nargs="*", help="adapter versions (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        adapters = AdapterVersion.objects.order_by("created_at")
        if options["versions"]:
            adapters = adapters.filter(version__in=options["versions"])
            missing = set(options["versions"]) - set(adapters.values_list("version", flat=True))
            if missing:
                raise CommandError(f"no such adapter: {', '.join(sorted(missing))}")
        failed = 0
        for adapter in adapters:
            base = Path(adapter.base_model)
            folder = base if (base / "config.json").is_file() else hf_model_path()
            try:
                config = json.loads((folder / "config.json").read_text())
                had = (Path(adapter.path) / GGUF_LORA).is_file()
                adapter_add_gguf(version=adapter.version, base_config=config)
                status, error = ("present" if had else "converted"), ""
            except (AdapterRefused, ConversionError, OSError, ValueError) as exc:
                failed += 1
                status, error = "failed", str(exc)
            self.stdout.write(
                json.dumps({"version": adapter.version, "status": status, "error": error})
            )
        if failed:
            raise SystemExit(1)
