from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def ocr_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without Debian's tesseract: a PATH on which it cannot be found."""
    empty = tmp_path / "bin-without-tesseract"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("tesseract") is None


@pytest.fixture
def ocr_on() -> None:
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract-ocr is not installed (scripts/ocr.sh installs it where apt works)")
