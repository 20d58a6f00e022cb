# Set-up and the two commands from the README. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch: a bare "torch" requirement would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: run test bench clean

# pip -qq: errors still stop the set-up with their message; warnings (a machine's unused index
# locations, say) are not repeated for every package.
PIP := $(BIN)/python -m pip --quiet --quiet --disable-pip-version-check

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "setting up $(VENV): $(TORCH_PIN), then drivelab with its dev extra (a minute or two) ..."
	@$(PIP) install "$(TORCH_PIN)"
	@$(PIP) install -e ".[dev]"
	@touch $@

# The main job: PPO vs DQN vs the rule-based driver on a small budget, then the comparison report.
run: $(VENV)/.installed
	@echo "drivelab sweep experiments/lanekeep_quick.yaml --out runs"
	@$(BIN)/drivelab sweep experiments/lanekeep_quick.yaml --out runs
	@echo "drivelab compare runs/lanekeep_quick"
	@$(BIN)/drivelab compare runs/lanekeep_quick

# The test suite. pytest's exit status 5 (no tests collected) is a failure here, not a pass.
# The GUI tests (tests/envs/test_gui.py) run PyBullet's window under Xvfb: installed here when missing and
# this is a Debian/Ubuntu machine we are root on; without it they skip, saying why.
test: $(VENV)/.installed
	@if ! command -v Xvfb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Xvfb for the GUI tests (apt-get install xvfb) ..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -qq xvfb || { apt-get update -qq && apt-get install -y -qq xvfb; }; } >/dev/null 2>&1 \
			|| echo "could not install Xvfb: the GUI tests will skip" >&2; \
	fi
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

bench: $(VENV)/.installed
	@$(BIN)/drivelab bench env
	@$(BIN)/drivelab bench train

clean:
	rm -rf $(VENV)
