#!/usr/bin/env bash
# kaleido exports plotly figures to PNG through a Chromium browser. Install Debian's when it is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
   || command -v google-chrome >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Chromium (Debian package) for kaleido's PNG export..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "Chromium is missing and cannot be installed here (needs root and apt-get)." >&2
  echo "Install Chromium or Chrome yourself; figures cannot be exported without it." >&2
  exit 1
fi
