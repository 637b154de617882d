"""Import every package vqspeech needs; one line per failure naming the package and the fix.

    python tools/check_install.py        # exit status 1 when any import fails
    python tools/check_install.py --quiet   # print nothing when every import works

Run by tools/setup.sh right after installing, and by `make` before every target that uses the venv, so
a venv whose torchaudio does not load beside its torch (torchaudio 2.11.1 with torch 2.11.0) stops with
one line instead of a traceback deep inside a command.
"""

from __future__ import annotations

import importlib
import sys
import warnings

# (module to import, the package that provides it)
PACKAGES = [
    ("torch", "torch"),
    ("torchaudio", "torchaudio"),
    ("librosa", "librosa"),
    ("soundfile", "soundfile"),
    ("hydra", "hydra-core"),
    ("pesq", "pesq"),
    ("pystoi", "pystoi"),
    ("speechmos.dnsmos", "speechmos"),
    ("onnxruntime", "onnxruntime"),
    ("resemblyzer", "resemblyzer"),
    ("pocketsphinx", "pocketsphinx"),
    ("vqspeech", "vqspeech"),
]

FIX = "rebuild the venv from the lock: rm -rf .venv && make setup"


def main(argv: list[str] | None = None) -> int:
    quiet = "--quiet" in (sys.argv[1:] if argv is None else argv)
    if sys.version_info < (3, 11):
        print(f"setup: vqspeech needs Python >= 3.11, this venv has {sys.version.split()[0]}; {FIX} "
              "with PYTHON=python3.11 (or newer)", file=sys.stderr)
        return 1
    failed = 0
    for module, package in PACKAGES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is reported the same way
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"setup: {package} does not import ({type(exc).__name__}: {reason[:160]}); {FIX}",
                  file=sys.stderr)
            failed += 1
    if failed:
        return 1
    if quiet:
        return 0
    import torch
    import torchaudio
    import vqspeech

    print(f"setup: torch {torch.__version__} | torchaudio {torchaudio.__version__} | "
          f"vqspeech {vqspeech.__version__} | {len(PACKAGES)} packages import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
