"""Registering adapters and choosing the served one. Generators follow the served row."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from apps.adapters.models import AdapterVersion, ServedAdapter, ServingChange
from ml import adapters as adapter_files

logger = logging.getLogger(__name__)

NOTICE_CHANNEL = "plumbline:served-adapter"


def adapter_register(
    *, path: Path, algorithm: str = "", metrics: dict | None = None
) -> AdapterVersion:
    """Records a finished adapter folder after checking it against its manifest."""
    manifest = adapter_files.verify(path)
    parent = AdapterVersion.objects.filter(version=manifest.parent).first()
    adapter, _ = AdapterVersion.objects.update_or_create(
        version=manifest.version,
        defaults={
            "path": str(path),
            "base_model": manifest.base_model,
            "parent": parent,
            "algorithm": algorithm or manifest.algorithm,
            "checksum": manifest.checksum,
            "manifest": {k: v for k, v in manifest.__dict__.items() if k != "files"},
            "metrics": metrics if metrics is not None else manifest.metrics,
        },
    )
    return adapter


def adapter_add_gguf(*, version: str, base_config: dict[str, Any]) -> AdapterVersion:
    """Converts a registered adapter that predates GGUF LoRA files (llama.cpp refuses it
    until then) and records its new checksum; a refusal for the missing file is cleared, so
    generators load it at their next check. ``base_config``: the base model's HF config."""
    adapter = AdapterVersion.objects.get(version=version)
    manifest = adapter_files.add_gguf(Path(adapter.path), base_config=base_config)
    if manifest.checksum != adapter.checksum:
        AdapterVersion.objects.filter(pk=adapter.pk).update(
            checksum=manifest.checksum,
            manifest={k: v for k, v in manifest.__dict__.items() if k != "files"},
            refused_reason="",
        )
        publish_notice(version)
    adapter.refresh_from_db()
    return adapter


def _served_row() -> ServedAdapter:
    row, _ = ServedAdapter.objects.select_for_update().get_or_create(pk=ServedAdapter.SINGLETON_ID)
    return row


def adapter_promote(*, version: str, user: User | None = None, reason: str = "") -> ServedAdapter:
    """Makes ``version`` (or ``base``) the served adapter and tells every generator.

    The notice goes out on Redis after the commit; generators that miss it pick the change
    up at their next periodic check.
    """
    with transaction.atomic():
        row = _served_row()
        adapter = (
            None if version == adapter_files.BASE else AdapterVersion.objects.get(version=version)
        )
        previous = row.version
        if previous == version:
            return row
        row.adapter = adapter
        row.save()
        ServingChange.objects.create(
            from_version=previous, to_version=version, reason=reason, changed_by=user
        )
        transaction.on_commit(lambda: publish_notice(version))
    return row


class RollbackRefused(ValueError):
    """The rollback asked for would undo something other than the latest change."""


def adapter_rollback(*, change_id: int | None = None, user: User | None = None) -> ServedAdapter:
    """Serves again what was served before the latest change. With ``change_id`` (the
    change a person chose to undo), refuses unless that change is still the latest."""
    with transaction.atomic():
        # The served row's lock keeps another promotion from slipping in between the check
        # and the rollback, which would then undo a change nobody chose.
        ServedAdapter.objects.select_for_update().filter(pk=ServedAdapter.SINGLETON_ID).first()
        last = ServingChange.objects.first()
        if last is None:
            raise RollbackRefused("nothing to roll back: the served adapter has never changed")
        if change_id is not None and last.pk != change_id:
            chosen = ServingChange.objects.filter(pk=change_id).first()
            raise RollbackRefused(
                f"“{chosen or change_id}” is not the latest change; roll back the latest one, "
                "or serve the adapter you want from the adapter versions list."
            )
        return adapter_promote(
            version=last.from_version, user=user, reason=f"rollback of {last.to_version}"
        )


def adapter_refused(*, version: str, reason: str) -> None:
    AdapterVersion.objects.filter(version=version).update(refused_reason=reason[:2000])


def publish_notice(version: str) -> None:
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).publish(NOTICE_CHANNEL, version)
    except redis.RedisError as exc:  # the periodic check still picks the change up
        logger.warning("could not publish the served-adapter notice: %s", exc)
