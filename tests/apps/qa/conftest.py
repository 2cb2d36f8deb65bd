from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.documents.models import Document
from apps.qa import generation
from tests import support

FORKLIFT = "What is the minimum heating temperature for warehouse areas with forklift loading?"


@pytest.fixture
def library(db: None, small_pdf: bytes) -> Document:
    return support.ingest("UFC_3-410-01.pdf", small_pdf)


@pytest.fixture
def local_generator(settings, base_model_path: Path) -> Iterator[None]:
    settings.GENERATOR_BACKEND = "local"
    settings.GENERATOR_MODEL_PATH = str(base_model_path)
    settings.GENERATION_MAX_NEW_TOKENS = 40
    yield


@pytest.fixture
def generator_down(settings) -> Iterator[None]:
    """The openai backend pointed at a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.GENERATOR_BACKEND = "openai"
    settings.GENERATOR_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.GENERATOR_MODEL = "mistral-7b-instruct"
    generation.reset_generator()
    yield
    generation.reset_generator()
