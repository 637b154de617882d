#!/usr/bin/env bash
# Set up vqspeech on a fresh Debian/Ubuntu machine: system packages (as root), then a virtualenv
# installed from requirements.lock (exact versions with hashes), then vqspeech itself (editable).
#   bash tools/setup.sh            # uses .venv, or $VENV; $PYTHON picks the interpreter (>= 3.11)
#   BROWSER=0 bash tools/setup.sh  # without Debian's chromium + chromium-driver (the report pages' browser test skips)
# Refresh the lock after changing pyproject's dependencies:  bash tools/lock.sh
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
LOCK=${LOCK:-requirements.lock}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup: no $PYTHON on PATH; install Python >= 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: vqspeech needs Python >= 3.11, $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())'); set PYTHON=python3.11 (or newer)" >&2
  exit 1
fi

need_apt=()
command -v flite >/dev/null 2>&1 || need_apt+=(flite)      # demo corpus voices
command -v c2enc >/dev/null 2>&1 || need_apt+=(codec2)     # reconstruction baseline
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)          # pyworld (WORLD) ships as source and is built on install
if [ "${BROWSER:-1}" != 0 ]; then  # the dev extra's browser test of report pages (tests/test_browser.py); BROWSER=0 skips it
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  [ -d /usr/share/fonts/truetype/liberation ] || need_apt+=(fonts-liberation)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; run as root: apt-get update && apt-get install -y --no-install-recommends ${need_apt[*]} (BROWSER=0 leaves chromium out)" >&2
    exit 1
  fi
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $VENV was made with Python < 3.11; remove it (rm -rf $VENV) and run again" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# pip, with its output kept quiet unless it fails (a failed install must stop setup, not scroll by).
pip_quiet() {
  local log
  log=$(mktemp)
  if ! "$VENV/bin/python" -m pip "$@" >"$log" 2>&1; then
    grep -v '^WARNING: Location' "$log" | tail -n 25 >&2
    rm -f "$log"
    echo "setup: pip $1 failed (its last lines are above)" >&2
    exit 1
  fi
  rm -f "$log"
}

echo "setup: pip install -r $LOCK (torch 2.11.0 + torchaudio 2.11.0 and every other package at its locked version; the first time takes a few minutes)"
pip_quiet install -q --upgrade pip
pip_quiet install -q --require-hashes -r "$LOCK"
pip_quiet install -q --no-deps -e .
"$VENV/bin/python" tools/check_install.py
