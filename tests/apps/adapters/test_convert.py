"""Adapters registered before llama.cpp serving: refused for the missing GGUF LoRA with the
command that fixes it, converted by ``convert_adapters``, then served."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.adapters import services
from apps.adapters.models import AdapterVersion
from apps.answering import engine
from ml import adapters
from tests import support

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def llama(settings, tmp_path: Path):
    settings.GENERATOR_BACKEND = "llamacpp"
    settings.ADAPTERS_DIR = tmp_path / "adapters"
    engine.reset_generator()
    yield engine.get_generator(watch=False)
    engine.reset_generator()


def _convert(*versions: str) -> tuple[list[dict], int]:
    out = StringIO()
    try:
        call_command("convert_adapters", *versions, stdout=out)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return [json.loads(line) for line in out.getvalue().splitlines()], code


def test_an_old_adapter_is_refused_then_converted_and_served(
    llama, settings, base_model_path: Path
):
    path = support.make_adapter(base_model_path, settings.ADAPTERS_DIR, "old", seed=1, gguf=False)
    old = services.adapter_register(path=path)
    services.adapter_promote(version="old")
    assert engine.sync_served_adapter(llama) == "base"
    assert "convert_adapters" in AdapterVersion.objects.get(version="old").refused_reason

    rows, code = _convert()
    assert code == 0 and rows == [{"version": "old", "status": "converted", "error": ""}]
    converted = AdapterVersion.objects.get(version="old")
    assert converted.checksum != old.checksum and converted.refused_reason == ""
    assert adapters.GGUF_LORA in adapters.verify(path, need_gguf=True).files
    assert engine.sync_served_adapter(llama) == "old"
    assert _convert("old") == ([{"version": "old", "status": "present", "error": ""}], 0)


def test_an_adapter_that_cannot_convert_is_left_as_it_was(llama, settings, base_model_path):
    path = support.make_adapter(base_model_path, settings.ADAPTERS_DIR, "dora", seed=2, gguf=False)
    config = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    (path / adapters.MANIFEST).unlink()
    adapters.write_manifest(path, version="dora", base_model=base_model_path.name)
    before = services.adapter_register(path=path)
    files = sorted(p.name for p in path.iterdir())

    rows, code = _convert("dora")
    assert code == 1 and rows[0]["status"] == "failed" and "DoRA" in rows[0]["error"]
    assert sorted(p.name for p in path.iterdir()) == files
    assert AdapterVersion.objects.get(version="dora").checksum == before.checksum
    assert not list(path.parent.glob(".dora-*"))  # no staging folder left behind
