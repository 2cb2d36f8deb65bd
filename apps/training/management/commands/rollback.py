from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.adapters.services import adapter_rollback


class Command(BaseCommand):
    help = "Serves again what was served before the last change."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            row = adapter_rollback()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"serving {row.version}")
