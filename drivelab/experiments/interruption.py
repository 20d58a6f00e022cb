"""Stopping ``drivelab train`` and ``drivelab sweep`` cleanly on Ctrl-C (SIGINT) and SIGTERM.

The first signal only sets a flag (:func:`stop_requested`). The trial runner checks it at every
env step, through its stable-baselines3 callback (whose ``False`` ends ``learn`` between two steps),
and between evaluation episodes; it then saves a checkpoint (model, DQN replay buffer, evaluation
schedule), marks the trial ``interrupted`` and raises ``TrialInterrupted``. The command prints
:data:`INTERRUPTED_LINE` and exits with :data:`EXIT_INTERRUPTED`.

A second signal raises ``KeyboardInterrupt`` at once, for a clean-up that takes too long: the trial
is still marked ``interrupted``, without the fresh checkpoint (the rerun resumes from the last
periodic one). Signals after the second are ignored, so that they cannot tear the clean-up they
interrupt into a traceback.

Sweep workers (``ProcessPoolExecutor``, spawned) are in the sweep's process group, so a terminal's
Ctrl-C reaches them too, busy or idle. They are started with the two signals ignored (the spawned
interpreter inherits ``SIG_IGN``, so a Ctrl-C while it imports is not a ``KeyboardInterrupt``), and
their initializer, :func:`install_worker_handlers`, installs the same handlers, with a flag shared
with the sweep's process: a SIGTERM sent to the sweep's process alone (as schedulers do) stops the
workers too. A worker's second signal raises ``KeyboardInterrupt`` only while it runs a trial.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C
INTERRUPTED_LINE = "interrupted; run the same command to resume"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_stop = threading.Event()
_shared_stop: Any = None  # a multiprocessing RawValue: the sweep's process sets it, its workers read it
_signals_received = 0
_may_force = True
_on_stop: list[Callable[[], None]] = []


def stop_requested() -> bool:
    """True once this process, or the sweep that started it, was asked to stop."""
    return _stop.is_set() or (_shared_stop is not None and bool(_shared_stop.value))


def request_stop() -> None:
    """What the first signal does; callable directly (tests, embedding code)."""
    _stop.set()
    for callback in list(_on_stop):
        callback()


def _handle(signum: int, frame: Any) -> None:
    global _signals_received
    _signals_received += 1
    if _signals_received == 1:
        request_stop()
    elif _signals_received == 2 and _may_force:
        raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a stop (see the module docstring); the previous
    handlers come back after it. Outside the main thread, where Python cannot handle signals, a no-op."""
    global _signals_received
    if not _in_main_thread():
        yield
        return
    _stop.clear()
    _signals_received = 0
    previous = {number: signal.signal(number, _handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            if handler is not None:
                signal.signal(number, handler)


@contextmanager
def when_stop_requested(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` on the first stop request within the block (at once if one came already)."""
    _on_stop.append(callback)
    try:
        if stop_requested():
            callback()
        yield
    finally:
        _on_stop.remove(callback)


@contextmanager
def children_ignore_stop_signals() -> Iterator[None]:
    """Processes spawned within the block start with SIGINT and SIGTERM ignored (inherited across exec).

    In this process the two signals are blocked meanwhile, not lost: Linux keeps a blocked signal
    pending even while its action is to ignore it, and delivers it to the restored handler afterwards.
    """
    if not _in_main_thread():
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def install_worker_handlers(shared_stop: Any) -> None:
    """``ProcessPoolExecutor`` initializer: a worker stops when it gets a signal or the sweep sets
    ``shared_stop`` (a ``RawValue``); its second signal forces only within :func:`forcible`."""
    global _shared_stop, _may_force, _signals_received
    _shared_stop = shared_stop
    _may_force = False
    _signals_received = 0
    for number in STOP_SIGNALS:
        signal.signal(number, _handle)


@contextmanager
def forcible() -> Iterator[None]:
    """Within the block, a second signal raises KeyboardInterrupt (a worker, while it runs a trial)."""
    global _may_force
    before = _may_force
    _may_force = True
    try:
        yield
    finally:
        _may_force = before
