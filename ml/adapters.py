"""LoRA adapter folders (and reward model folders) that describe themselves.

An adapter folder holds peft's files, the same adapter as a GGUF LoRA for llama.cpp
(``adapter.gguf``), and ``manifest.json``: version, base model, parent adapter, data
snapshot, config, metrics, and a SHA-256 per file with one checksum over them all. Folders are written under a temporary name and renamed into place, so a
half-written adapter can never be served; a folder whose files do not match its manifest
is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
GGUF_LORA = "adapter.gguf"  # written by ml.gguf_lora.convert
BASE = "base"  # the served version that means "no adapter"


class AdapterRefused(RuntimeError):
    """An adapter folder that must not be served; the message says why."""


@dataclass(frozen=True)
class Manifest:
    version: str
    base_model: str
    files: dict[str, str]
    checksum: str
    parent: str = BASE
    algorithm: str = ""
    data_snapshot: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _combined(files: dict[str, str]) -> str:
    return hashlib.sha256(
        "".join(f"{name}\0{sha}\n" for name, sha in sorted(files.items())).encode()
    ).hexdigest()


def write_manifest(folder: Path, *, version: str, base_model: str, **fields: Any) -> Manifest:
    files = {
        str(path.relative_to(folder)): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = Manifest(
        version=version, base_model=base_model, files=files, checksum=_combined(files), **fields
    )
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True))
    return manifest


def finish(
    staging: Path,
    *,
    adapters_dir: Path,
    version: str,
    base_model: str,
    base_config: dict[str, Any],
    **fields: Any,
) -> Path:
    """Completes an adapter folder that holds peft's files: converts it to a GGUF LoRA,
    writes the manifest over both, and renames it to ``adapters_dir/version``. Any failure
    (a conversion included) removes the staging folder, so nothing half-made is visible."""
    from ml import gguf_lora

    try:
        gguf_lora.convert(staging, base_config=base_config)
        write_manifest(staging, version=version, base_model=base_model, **fields)
        return publish(staging, adapters_dir / version)
    except BaseException:
        discard(staging)
        raise


def add_gguf(folder: Path, *, base_config: dict[str, Any]) -> Manifest:
    """Gives a published adapter made before GGUF LoRA files existed its ``adapter.gguf``:
    a verified copy is converted and given a new manifest (same version and fields, new
    checksum), then swapped in with two renames. A failed conversion changes nothing."""
    from ml import gguf_lora

    manifest = verify(folder)
    if GGUF_LORA in manifest.files:
        return manifest
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-gguf-", dir=folder.parent))
    try:
        for name in manifest.files:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / name, target)
        gguf_lora.convert(staging, base_config=base_config)
        fields = {k: v for k, v in asdict(manifest).items() if k not in {"files", "checksum"}}
        updated = write_manifest(staging, **fields)
        retired = folder.with_name(f".{folder.name}-retired")
        os.replace(folder, retired)
        os.replace(staging, folder)
    except BaseException:
        discard(staging)
        raise
    discard(retired)
    return updated


def publish(temporary: Path, final: Path) -> Path:
    """Moves a finished adapter folder into place in one rename."""
    if final.exists():
        raise FileExistsError(f"adapter folder already exists: {final}")
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temporary, final)
    return final


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise AdapterRefused(f"{folder} has no {MANIFEST}")
    try:
        data = json.loads(path.read_text())
        return Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise AdapterRefused(f"{path} is not a valid manifest: {exc}") from exc


def verify(
    folder: Path,
    *,
    expected_checksum: str | None = None,
    need_gguf: bool = False,
    required: tuple[str, ...] = ("adapter_config.json",),
) -> Manifest:
    """The manifest, once every file matches it (and the registry's checksum, if given);
    ``need_gguf``: the folder must also hold its GGUF LoRA (llama.cpp serves that file);
    ``required``: files it must list (a reward model's folder needs config.json)."""
    if not folder.is_dir():
        raise AdapterRefused(f"adapter folder not found: {folder}")
    manifest = read_manifest(folder)
    for name, sha in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise AdapterRefused(f"{name} is missing from {folder}")
        if _sha256(path) != sha:
            raise AdapterRefused(f"{name} in {folder} does not match its manifest checksum")
    if _combined(manifest.files) != manifest.checksum:
        raise AdapterRefused(f"the manifest checksum of {folder} does not match its files")
    if expected_checksum and expected_checksum != manifest.checksum:
        raise AdapterRefused(f"{folder} is not the adapter that was registered (checksum differs)")
    for name in required:
        if name not in manifest.files:
            raise AdapterRefused(f"{folder} holds no {name}")
    if need_gguf and GGUF_LORA not in manifest.files:
        raise AdapterRefused(
            f"{folder} holds no {GGUF_LORA} (made before llama.cpp serving; "
            "run manage.py convert_adapters)"
        )
    return manifest


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
