#!/usr/bin/env bash
# Installs Debian packages for an optional tool that is missing, where apt is usable (root
# and apt-get). Never fails the caller: where it cannot, it says what is off and exits 0.
# usage: scripts/apt-package.sh COMMAND "what is off without it" PACKAGE...
set -uo pipefail
tool=$1 without=$2
shift 2
if command -v "$tool" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "$tool is missing and cannot be installed here (needs root and apt-get): $without" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null; }; then
  echo "apt-get could not install $*: $without" >&2
fi
exit 0
