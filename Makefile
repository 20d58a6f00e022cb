# Set-up and the two commands from the README. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch: a bare "torch" requirement would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_PIN)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# The main job: PPO vs DQN vs the rule-based driver on a small budget, then the comparison report.
run: $(VENV)/.installed
	$(BIN)/drivelab sweep experiments/lanekeep_quick.yaml --out runs
	$(BIN)/drivelab compare runs/lanekeep_quick

# The test suite. pytest's exit status 5 (no tests collected) is a failure here, not a pass.
test: $(VENV)/.installed
	@$(BIN)/python -m pytest -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$status

bench: $(VENV)/.installed
	$(BIN)/drivelab bench env
	$(BIN)/drivelab bench train

clean:
	rm -rf $(VENV)
