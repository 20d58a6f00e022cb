"""Sweeps: every (agent, seed) trial of a config, on local worker processes or on a Ray cluster.

Resumable: a trial whose status is ``done`` is skipped; a running-but-dead or failed trial is run
again (from its last checkpoint when it has one). A failed trial is recorded in its run directory
and does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from drivelab.experiments.config import ExperimentConfig, resolve_trial
from drivelab.experiments.trial import prepare_run_dir, read_status, run_trial, trial_dir

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class TrialOutcome:
    agent: str
    seed: int
    run_dir: str
    state: str  # done | failed | skipped
    error: str | None = None


def plan_trials(config: ExperimentConfig, out: Path) -> list[tuple[dict[str, Any], Path]]:
    """All (resolved trial, run dir) pairs, agents in config order, seeds in config order."""
    return [(resolve_trial(config, agent.name, seed), trial_dir(out, config.name, agent.name, seed))
            for agent in config.agents for seed in config.seeds]


def _run_one(trial: dict[str, Any], run_dir: str) -> TrialOutcome:
    """Worker entry point (a fresh process or a Ray task): never raises, reports instead."""
    try:
        status = run_trial(trial, Path(run_dir))
        return TrialOutcome(trial["agent"], trial["seed"], run_dir, status["state"])
    except BaseException as error:  # recorded in the run directory by run_trial; the sweep goes on
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        return TrialOutcome(trial["agent"], trial["seed"], run_dir, "failed", message)


def run_sweep(config: ExperimentConfig, out: Path, *, workers: int = 1, backend: str = "local",
              address: str | None = None, on_outcome: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Run every trial that is not done yet; returns one outcome per trial (skipped ones included)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    report = on_outcome or (lambda _outcome: None)
    outcomes: list[TrialOutcome] = []
    pending: list[tuple[dict[str, Any], Path]] = []
    for trial, run_dir in plan_trials(config, out):
        prepare_run_dir(trial, run_dir)  # a changed config is refused before anything runs
        status = read_status(run_dir)
        if status is not None and status.get("state") == "done":
            outcome = TrialOutcome(trial["agent"], trial["seed"], str(run_dir), "skipped")
            outcomes.append(outcome)
            report(outcome)
        else:
            pending.append((trial, run_dir))
    if backend == "ray":
        outcomes += _run_on_ray(pending, address, report)
    else:
        outcomes += _run_locally(pending, workers, report)
    return outcomes


def _run_locally(pending, workers: int, report) -> list[TrialOutcome]:
    if not pending:
        return []
    outcomes = []
    # Fresh interpreters ("spawn"): PyBullet and torch state must not be forked mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        futures = [pool.submit(_run_one, trial, str(run_dir)) for trial, run_dir in pending]
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            report(outcome)
    return outcomes


def _run_on_ray(pending, address: str | None, report) -> list[TrialOutcome]:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'drivelab[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        # address None starts a local Ray on this machine, told to use the loopback address (Ray 2.60's
        # agents still listen on the host's own interface too); "auto" or host:port joins a cluster.
        local = {"_node_ip_address": "127.0.0.1"} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_roots())}}, **local)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_run_one)
        references = {remote.remote(trial, str(run_dir)): None for trial, run_dir in pending}
        outcomes = []
        waiting = list(references)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            outcome = ray.get(done[0])
            outcomes.append(outcome)
            report(outcome)
        return outcomes
    finally:
        if started_here:
            ray.shutdown()


def _import_roots() -> list[str]:
    """Where ``drivelab`` is imported from, so Ray workers import the same code."""
    import drivelab

    return [str(Path(drivelab.__file__).resolve().parents[1])]
