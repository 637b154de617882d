# Two commands do all set-up on a fresh Debian/Ubuntu machine (as root: apt packages are installed):
#   make demo   prepare the offline demo corpus, train briefly, write a reconstructed sample and a report
#   make test   the test suite (CPU, a few minutes)
# The venv is installed from requirements.lock (exact versions, hashes); `bash tools/lock.sh` refreshes it.
VENV ?= .venv
DEMO_MINUTES ?= 3
VQSPEECH_VCTK_MINI ?= ../shared/data/vctk-mini
export VQSPEECH_VCTK_MINI

.PHONY: setup demo test test-all

$(VENV)/.installed: pyproject.toml requirements.lock tools/setup.sh
	VENV=$(VENV) bash tools/setup.sh
	touch $@

# Every target checks that the venv's packages import (one line naming the package and the fix if not).
setup: $(VENV)/.installed
	@$(VENV)/bin/python tools/check_install.py --quiet

demo: setup
	$(VENV)/bin/vqspeech prepare demo --out data/demo
	$(VENV)/bin/vqspeech train recipes/demo train.max_minutes=$(DEMO_MINUTES)
	$(VENV)/bin/vqspeech report --run runs/demo
	$(VENV)/bin/vqspeech convert data/demo/kal16/s0231.wav --speaker slt --run runs/demo -o runs/demo/converted --overwrite
	@echo "demo: reconstruction and report in runs/demo/report/, conversion (kal16 -> slt) in runs/demo/converted/"

test: setup
	$(VENV)/bin/python -m pytest -m "not slow" -q

test-all: setup
	$(VENV)/bin/python -m pytest -q
