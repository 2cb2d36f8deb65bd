from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.adapters.models import AdapterVersion
from apps.adapters.services import adapter_promote
from ml.adapters import BASE


class Command(BaseCommand):
    help = "Serves an adapter version (or base) now; generators switch without a restart."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version")
        parser.add_argument("--reason", default="promoted from the command line")

    def handle(self, *args: Any, **options: Any) -> None:
        version = options["version"]
        if version != BASE and not AdapterVersion.objects.filter(version=version).exists():
            raise CommandError(f"no adapter {version!r} (see the adapter registry in admin)")
        row = adapter_promote(version=version, reason=options["reason"])
        self.stdout.write(f"serving {row.version}")
