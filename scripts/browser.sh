#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
exec bash "$(dirname "$0")/apt-package.sh" chromium "browser tests will be skipped" chromium
