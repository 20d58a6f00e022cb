"""Sweeps: every (agent, seed) trial of a config, on local worker processes or on a Ray cluster.

Resumable: a trial whose status is ``done`` is skipped; a failed, interrupted or running-but-dead
trial is run again (from its last checkpoint when it has one). A failed trial is recorded in its run
directory and does not stop the others.

Each trial has one writer (:mod:`drivelab.experiments.ownership`): a trial that another live process
owns (a second sweep, a ``drivelab train``, another host on a shared filesystem) is reported as
``running elsewhere`` and left alone. The sweep looks before it dispatches a trial, and the worker
decides when it takes the trial's lock, so two sweeps started at the same moment run each trial once.

A stop request (Ctrl-C, SIGTERM; :mod:`drivelab.experiments.interruption`) reaches every worker, which
checkpoints its trial and marks it ``interrupted``; trials not yet started are left as they are.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from drivelab.experiments import interruption
from drivelab.experiments.config import ExperimentConfig, resolve_trial
from drivelab.experiments.ownership import TrialOwnedElsewhere, current_owner
from drivelab.experiments.trial import (TrialAlreadyDone, TrialInterrupted, check_run_dir_config, read_status,
                                        run_trial, trial_dir)

BACKENDS = ("local", "ray")

DONE, SKIPPED, FAILED = "done", "skipped", "failed"
RUNNING_ELSEWHERE, INTERRUPTED = "running elsewhere", "interrupted"
OUTCOME_STATES = (DONE, SKIPPED, RUNNING_ELSEWHERE, FAILED, INTERRUPTED)
_NOT_STARTED = "stopped before it started"


@dataclass(frozen=True)
class TrialOutcome:
    agent: str
    seed: int
    run_dir: str
    state: str  # one of OUTCOME_STATES
    error: str | None = None  # failed: the error; running elsewhere: the owner; interrupted: where it stopped


def plan_trials(config: ExperimentConfig, out: Path) -> list[tuple[dict[str, Any], Path]]:
    """All (resolved trial, run dir) pairs, agents in config order, seeds in config order."""
    return [(resolve_trial(config, agent.name, seed), trial_dir(out, config.name, agent.name, seed))
            for agent in config.agents for seed in config.seeds]


def _run_one(trial: dict[str, Any], run_dir: str) -> TrialOutcome:
    """Worker entry point (a fresh process or a Ray task): never raises, reports instead."""
    def outcome(state: str, detail: str | None = None) -> TrialOutcome:
        return TrialOutcome(trial["agent"], trial["seed"], run_dir, state, detail)

    try:
        with interruption.forcible():
            status = run_trial(trial, Path(run_dir))
        return outcome(status["state"])
    except TrialOwnedElsewhere as owned:
        return outcome(RUNNING_ELSEWHERE, owned.owner.describe())
    except TrialAlreadyDone:
        return outcome(SKIPPED)
    except TrialInterrupted as stop:
        return outcome(INTERRUPTED, str(stop) if stop.started else _NOT_STARTED)
    except KeyboardInterrupt:
        return outcome(INTERRUPTED, "stopped at once")
    except BaseException as error:  # recorded in the run directory by run_trial; the sweep goes on
        return outcome(FAILED, f"{type(error).__name__}: {error}".splitlines()[0])


def run_sweep(config: ExperimentConfig, out: Path, *, workers: int = 1, backend: str = "local",
              address: str | None = None, on_outcome: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Run every trial that is not done yet; returns one outcome per trial (skipped ones included).

    A stop request (:func:`drivelab.experiments.interruption.request_stop`, or a signal within
    :func:`~drivelab.experiments.interruption.stop_on_signals`) ends it early; the trials it stopped are
    ``interrupted`` and those it had not started are not in the list.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    report = on_outcome or (lambda _outcome: None)
    planned = plan_trials(config, out)
    for trial, run_dir in planned:
        check_run_dir_config(trial, run_dir)  # a changed config is refused before anything runs
    outcomes: list[TrialOutcome] = []
    pending: list[tuple[dict[str, Any], Path]] = []
    for trial, run_dir in planned:
        status = read_status(run_dir)
        if status is not None and status.get("state") == "done":
            outcome = TrialOutcome(trial["agent"], trial["seed"], str(run_dir), SKIPPED)
        elif (owner := current_owner(run_dir)) is not None:
            outcome = TrialOutcome(trial["agent"], trial["seed"], str(run_dir), RUNNING_ELSEWHERE, owner.describe())
        else:
            pending.append((trial, run_dir))
            continue
        outcomes.append(outcome)
        report(outcome)
    if interruption.stop_requested():
        return outcomes
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
    # Lock-free on purpose: workers read it at every env step, and a worker killed while holding a
    # lock (an Event's) would leave the others waiting forever.
    shared_stop = context.RawValue("b", 0)

    def tell_workers() -> None:
        shared_stop.value = 1

    with interruption.when_stop_requested(tell_workers):
        with interruption.children_ignore_stop_signals():
            pool = ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context,
                                       initializer=interruption.install_worker_handlers, initargs=(shared_stop,))
            futures = [pool.submit(_run_one, trial, str(run_dir)) for trial, run_dir in pending]
        try:
            # Trials not started when a stop came return at once, untouched, and are not reported.
            for future in as_completed(futures):
                outcome = future.result()
                if outcome.state == INTERRUPTED and outcome.error == _NOT_STARTED:
                    continue
                outcomes.append(outcome)
                report(outcome)
        except BaseException:  # this process is leaving (a KeyboardInterrupt without stop_on_signals, say)
            tell_workers()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=bool(shared_stop.value))
    return outcomes


def _run_on_ray(pending, address: str | None, report) -> list[TrialOutcome]:
    try:
        import ray
    except ImportError:
        raise ValueError("--backend ray needs Ray: pip install 'drivelab[ray]'") from None
    import signal

    started_here = not ray.is_initialized()
    if started_here:
        own_sigterm = signal.getsignal(signal.SIGTERM) if interruption._in_main_thread() else None
        # address None starts a local Ray on this machine, told to use the loopback address (Ray 2.60's
        # agents still listen on the host's own interface too); "auto" or host:port joins a cluster.
        local = {"_node_ip_address": "127.0.0.1"} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_roots())}}, **local)
        if own_sigterm is not None:
            signal.signal(signal.SIGTERM, own_sigterm)  # ray.init installs its own, which exits at once
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_run_one)
        references = {remote.remote(trial, str(run_dir)): (trial, run_dir) for trial, run_dir in pending}
        outcomes = []
        waiting = list(references)
        cancelled = False
        while waiting:
            if interruption.stop_requested() and not cancelled:
                # KeyboardInterrupt inside each running task: run_trial marks it interrupted.
                for reference in waiting:
                    ray.cancel(reference)
                cancelled = True
            done, waiting = ray.wait(waiting, num_returns=1, timeout=0.2)
            if not done:
                continue
            trial, run_dir = references[done[0]]
            try:
                outcome = ray.get(done[0])
            except ray.exceptions.TaskCancelledError:
                state = read_status(run_dir) or {}
                if state.get("state") != INTERRUPTED:
                    continue  # cancelled before it started: untouched, not reported
                outcome = TrialOutcome(trial["agent"], trial["seed"], str(run_dir), INTERRUPTED, "stopped at once")
            if outcome.state == INTERRUPTED and outcome.error == _NOT_STARTED:
                continue
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
