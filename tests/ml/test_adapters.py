from __future__ import annotations

from pathlib import Path

import pytest

from ml import adapters


def _adapter(tmp_path: Path, version: str = "v1") -> Path:
    staging = tmp_path / f".{version}"
    staging.mkdir()
    (staging / "adapter_config.json").write_text('{"r": 8}')
    (staging / "adapter_model.safetensors").write_bytes(b"weights")
    adapters.write_manifest(
        staging, version=version, base_model="base", parent="base", metrics={"reward": 1.0}
    )
    return adapters.publish(staging, tmp_path / version)


def test_a_published_adapter_verifies(tmp_path: Path):
    folder = _adapter(tmp_path)
    manifest = adapters.verify(folder)
    assert manifest.version == "v1" and manifest.metrics == {"reward": 1.0}
    assert set(manifest.files) == {"adapter_config.json", "adapter_model.safetensors"}
    assert adapters.verify(folder, expected_checksum=manifest.checksum) == manifest


def test_tampered_files_are_refused(tmp_path: Path):
    folder = _adapter(tmp_path)
    (folder / "adapter_model.safetensors").write_bytes(b"other weights")
    with pytest.raises(adapters.AdapterRefused, match="does not match its manifest"):
        adapters.verify(folder)


def test_missing_files_and_manifests_are_refused(tmp_path: Path):
    folder = _adapter(tmp_path)
    (folder / "adapter_config.json").unlink()
    with pytest.raises(adapters.AdapterRefused, match="missing"):
        adapters.verify(folder)
    with pytest.raises(adapters.AdapterRefused, match="not found"):
        adapters.verify(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(adapters.AdapterRefused, match=r"no manifest\.json"):
        adapters.verify(empty)


def test_a_different_registered_checksum_is_refused(tmp_path: Path):
    folder = _adapter(tmp_path)
    with pytest.raises(adapters.AdapterRefused, match="not the adapter that was registered"):
        adapters.verify(folder, expected_checksum="0" * 64)


def test_publish_never_overwrites(tmp_path: Path):
    _adapter(tmp_path)
    staging = tmp_path / ".again"
    staging.mkdir()
    with pytest.raises(FileExistsError):
        adapters.publish(staging, tmp_path / "v1")
