from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apps.adapters.models import ServedAdapter


@dataclass(frozen=True)
class ServedTarget:
    version: str
    path: Path | None
    checksum: str | None


def served_target() -> ServedTarget:
    row = (
        ServedAdapter.objects.select_related("adapter")
        .filter(pk=ServedAdapter.SINGLETON_ID)
        .first()
    )
    if row is None or row.adapter is None:
        return ServedTarget("base", None, None)
    return ServedTarget(row.adapter.version, Path(row.adapter.path), row.adapter.checksum)
