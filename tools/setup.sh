#!/usr/bin/env bash
# Set up vqspeech on a fresh Debian/Ubuntu machine: system packages (as root), then a virtualenv.
#   bash tools/setup.sh            # uses .venv, or $VENV
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v flite >/dev/null 2>&1 || need_apt+=(flite)      # demo corpus voices
command -v c2enc >/dev/null 2>&1 || need_apt+=(codec2)     # reconstruction baseline
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; run as root: apt-get update && apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
echo "setup: pip install -e .[dev] (torch 2.11 + torchaudio 2.11; the first time takes a few minutes)"
"$VENV/bin/python" -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import torch, torchaudio, vqspeech; print('setup: torch', torch.__version__, '| torchaudio', torchaudio.__version__, '| vqspeech', vqspeech.__version__)"
