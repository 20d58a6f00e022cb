"""One writer per trial: a run directory is owned by one process at a time.

Two files in the run directory carry the ownership:

- ``owner.lock``: the owner holds an exclusive ``fcntl.flock`` on it for the whole trial. On a local
  disk this is the whole answer: the kernel releases the lock when the owner exits, however it exits.
  The file itself stays (removing a lock file lets two processes lock two different inodes).
- ``owner.json``: the owner's ``host``, ``pid``, ``started`` and ``heartbeat`` (Unix time), refreshed
  every few seconds by a background thread, and a random ``token``. It covers filesystems shared
  between hosts, where ``flock`` may be missing or may lock only on the host that takes it: another
  host's fresh heartbeat means "owned". The record is created only if absent (a complete file is
  hard-linked into place, or ``O_EXCL`` where links are not supported), so two processes never both
  create it. A stale record is taken over by the one process that creates a claim file named after
  the stale record's content (the same exclusive creation), checks that the record is still that one,
  and replaces it with its own by an atomic rename; a claim left by a process that died while taking
  over is itself stale after the limit below.

An owner is live while it holds the ``flock``; otherwise, when its record names this host, while its
pid exists (only where ``flock`` does not work: a released ``flock`` means the owner is gone); when
its record names another host, while its heartbeat is younger than :data:`STALE_AFTER_S` seconds
(``DRIVELAB_OWNER_STALE_S`` overrides it; hosts sharing a run directory need roughly synchronised
clocks, as they do for anything else on a shared filesystem). A live owner is refused
(:class:`TrialOwnedElsewhere`); a dead one is taken over, and the trial resumes from its checkpoint.

An owner whose record was taken over while it still ran (its heartbeat stalled past the limit, as
for a process stopped with Ctrl-Z on a host without shared locks) sees that at its next heartbeat:
:attr:`TrialOwnership.lost` turns true, and the trial runner stops writing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_FILE = "owner.lock"
OWNER_FILE = "owner.json"
STALE_AFTER_S = 60.0
STALE_AFTER_ENV = "DRIVELAB_OWNER_STALE_S"
# A few beats fit in the stale limit, so one slow write never makes a live owner look dead.
MAX_HEARTBEAT_EVERY_S = 5.0
BEATS_PER_STALE_LIMIT = 4
# How long a process waits for a flock holder's record (or for the lock, from a holder that is
# leaving or only looking), or for another's takeover of a stale record, before it counts the trial
# as owned elsewhere.
HOLDER_WAIT_S = 2.0

HOST = socket.gethostname()


def stale_after_s() -> float:
    """The stale limit in seconds: ``DRIVELAB_OWNER_STALE_S`` when set, else :data:`STALE_AFTER_S`.

    :raises ValueError: (one line) when the variable is not a positive number.
    """
    text = os.environ.get(STALE_AFTER_ENV)
    if text is None or not text.strip():
        return STALE_AFTER_S
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{STALE_AFTER_ENV} must be a number of seconds > 0, got {text!r}")
    return value


@dataclass(frozen=True)
class OwnerRecord:
    """What ``owner.json`` says; ``host`` is None for a record that could not be read (being written)."""

    host: str | None
    pid: int | None
    heartbeat: float | None
    token: str | None = None

    def heartbeat_age_s(self, now: float | None = None) -> float | None:
        if self.heartbeat is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.heartbeat)

    def describe(self) -> str:
        if self.host is None:
            return "another process (its owner record is not written yet)"
        age = self.heartbeat_age_s()
        beat = f"heartbeat {age:.0f} s ago" if age is not None else "no heartbeat"
        return f"pid {self.pid} on host {self.host} ({beat})"


UNKNOWN_OWNER = OwnerRecord(host=None, pid=None, heartbeat=None)


class TrialOwnedElsewhere(Exception):
    """Another live process owns the run directory; nothing was written."""

    def __init__(self, run_dir: Path, owner: OwnerRecord, message: str | None = None) -> None:
        self.run_dir, self.owner = Path(run_dir), owner
        super().__init__(message or f"{run_dir} is being run by {owner.describe()}")


class TrialOwnershipLost(TrialOwnedElsewhere):
    """This process's ownership was taken over while it ran; it stopped writing."""

    def __init__(self, run_dir: Path, owner: OwnerRecord) -> None:
        what = f"was taken over by {owner.describe()}" if owner.host is not None else "had its owner record removed"
        super().__init__(run_dir, owner, f"{run_dir} {what} while this process ran it; it stopped writing there")


def _parse(raw: bytes, mtime: float) -> OwnerRecord:
    try:
        data = json.loads(raw)
        return OwnerRecord(host=str(data["host"]), pid=int(data["pid"]), heartbeat=float(data["heartbeat"]),
                           token=str(data.get("token")))
    except (ValueError, KeyError, TypeError):
        # Half-written (the O_EXCL fallback writes in place) or damaged: its age is the file's.
        return OwnerRecord(host=None, pid=None, heartbeat=mtime)


def _read(path: Path) -> tuple[bytes, OwnerRecord] | None:
    try:
        with path.open("rb") as stream:
            raw = stream.read()
            mtime = os.fstat(stream.fileno()).st_mtime
    except FileNotFoundError:
        return None
    return raw, _parse(raw, mtime)


def _pid_alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:  # an exited child not yet reaped by its parent still answers kill(0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_live(record: OwnerRecord, flock_state: str, stale_after: float) -> bool:
    """Whether the record's owner still runs; ``flock_state`` is ``free`` (this process got the
    flock: no one on a host sharing locks holds it) or ``unsupported``."""
    age = record.heartbeat_age_s()
    fresh = age is not None and age < stale_after
    if record.host == HOST:
        if flock_state == "free":
            return False  # a live owner on this host would hold the flock
        return _pid_alive(record.pid) and fresh
    return fresh


def _take_flock(path: Path) -> tuple[int | None, str]:
    """``(fd, "free")`` with the lock taken, ``(None, "held")``, or ``(None, "unsupported")``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None, "held"
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None, "unsupported"
        raise
    return fd, "free"


def _probe_flock(path: Path) -> str:
    """``held``, ``free`` or ``unsupported``, taking the lock for an instant at most (no file created)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "free"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    except OSError:
        return "unsupported"
    finally:
        os.close(fd)  # closing releases the probe's lock
    return "free"


def _create_exclusively(path: Path, content: bytes) -> bool:
    """Put ``content`` at ``path`` complete and only if nothing is there; True when this call did."""
    staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    with staging.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    try:
        os.link(staging, path)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
        try:  # no hard links here: create in place, exclusively
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        return True
    finally:
        staging.unlink(missing_ok=True)


def _remove_if(path: Path, expected: bytes) -> bool:
    """Remove ``path`` if it holds ``expected`` (this process's own record or claim); True when removed.

    Renamed aside first, so that a file another process put there in the meantime is not deleted
    but linked back.
    """
    aside = path.with_name(f".{path.name}.aside.{secrets.token_hex(6)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    try:
        if aside.read_bytes() == expected:
            return True
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        return False
    finally:
        aside.unlink(missing_ok=True)


def _take_over(path: Path, stale: bytes, content: bytes, stale_after: float) -> bool:
    """Replace the stale record ``stale`` at ``path`` with ``content``; True when this process did.

    Of several processes taking over the same record, the one that creates the claim named after its
    content does; the claim stays until the record is replaced, so a process that claims later finds
    the record changed and judges again.
    """
    claim = path.with_name(f".{path.name}.claim-{hashlib.sha256(stale).hexdigest()[:16]}")
    mine = secrets.token_hex(8).encode()
    if not _create_exclusively(claim, mine):
        try:
            theirs, age = claim.read_bytes(), time.time() - claim.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > stale_after:
            _remove_if(claim, theirs)  # its taker died before it finished
        return False
    try:
        if _read_bytes(path) != stale:
            return False
        staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        staging.write_bytes(content)
        os.replace(staging, path)
        return _read_bytes(path) == content
    finally:
        claim.unlink(missing_ok=True)


def _names_a_running_process(record: OwnerRecord, stale_after: float) -> bool:
    """Whether a record found beside a held flock names a live owner: a live pid on this host (its
    heartbeat may be old: a stopped process keeps its lock), another host's fresh heartbeat. Otherwise
    it is a dead owner's, which the flock's holder is about to replace."""
    if record.host is None:
        return False
    if record.host == HOST:
        return _pid_alive(record.pid)
    age = record.heartbeat_age_s()
    return age is not None and age < stale_after


def current_owner(run_dir: Path, *, stale_after: float | None = None) -> OwnerRecord | None:
    """The live owner of ``run_dir`` (another process), or None; writes nothing.

    A look for reports: :meth:`TrialOwnership.acquire` is what decides.
    """
    run_dir = Path(run_dir)
    limit = stale_after_s() if stale_after is None else stale_after
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        flock_state = _probe_flock(run_dir / LOCK_FILE)
        found = _read(run_dir / OWNER_FILE)
        if flock_state != "held":
            return found[1] if found is not None and _is_live(found[1], flock_state, limit) else None
        if found is not None and _names_a_running_process(found[1], limit):
            return found[1]
        if time.monotonic() > deadline:
            return found[1] if found is not None else UNKNOWN_OWNER
        time.sleep(0.02)  # its holder is starting (no record yet) or leaving (record gone, lock not yet)


class TrialOwnership:
    """This process's ownership of a run directory: the flock, the record and its heartbeat.

    Use :meth:`acquire` as a context manager; leaving it stops the heartbeat, removes the record and
    releases the lock.
    """

    def __init__(self, run_dir: Path, lock_fd: int | None, record: dict[str, Any], stale_after: float) -> None:
        self.run_dir = Path(run_dir)
        self.token: str = record["token"]
        self.heartbeat_every_s = min(MAX_HEARTBEAT_EVERY_S, stale_after / BEATS_PER_STALE_LIMIT)
        self._lock_fd = lock_fd
        self._record = dict(record)
        self._content = _encode(record)
        self._lost_to: OwnerRecord | None = None
        self._stopping = threading.Event()
        self._beating = threading.Thread(target=self._beat, name=f"owner-heartbeat {self.run_dir}", daemon=True)
        self._beating.start()

    @classmethod
    def acquire(cls, run_dir: Path, *, stale_after: float | None = None, use_flock: bool = True) -> "TrialOwnership":
        """Become the owner of ``run_dir`` (created if missing), taking over a dead owner.

        :param stale_after: heartbeat age (s) after which another host's owner counts as dead;
            default :func:`stale_after_s`.
        :param use_flock: False to rely on the owner record alone, as on a filesystem without locks.
        :raises TrialOwnedElsewhere: another live process owns it; nothing was written.
        """
        run_dir = Path(run_dir)
        limit = stale_after_s() if stale_after is None else stale_after
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / OWNER_FILE
        deadline = time.monotonic() + HOLDER_WAIT_S
        while True:
            lock_fd, flock_state = _take_flock(run_dir / LOCK_FILE) if use_flock else (None, "unsupported")
            if flock_state != "held":
                break
            # Its holder may be starting (no record yet), leaving (record gone, lock not yet released)
            # or a sweep taking a look (current_owner): wait for its record, or for the lock.
            found = _read(path)
            if found is not None and _names_a_running_process(found[1], limit):
                raise TrialOwnedElsewhere(run_dir, found[1])
            if time.monotonic() > deadline:
                raise TrialOwnedElsewhere(run_dir, found[1] if found is not None else UNKNOWN_OWNER)
            time.sleep(0.02)
        try:
            now = time.time()
            record = {"host": HOST, "pid": os.getpid(), "started": now, "heartbeat": now, "token": secrets.token_hex(8)}
            content = _encode(record)
            last_seen = UNKNOWN_OWNER
            deadline = time.monotonic() + HOLDER_WAIT_S
            while True:
                if _create_exclusively(path, content):
                    if _read_bytes(path) == content:  # NFS may report a link it retried as failed, or the reverse
                        return cls(run_dir, lock_fd, record, limit)
                elif (found := _read(path)) is not None:
                    raw, last_seen = found
                    if _is_live(last_seen, flock_state, limit):
                        raise TrialOwnedElsewhere(run_dir, last_seen)
                    if _take_over(path, raw, content, limit):
                        return cls(run_dir, lock_fd, record, limit)
                if time.monotonic() > deadline:  # someone else keeps taking it over: theirs to run
                    raise TrialOwnedElsewhere(run_dir, last_seen)
                time.sleep(0.01)
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    @property
    def lost(self) -> bool:
        """True once another process took this run directory over (see the module docstring)."""
        return self._lost_to is not None

    @property
    def lost_to(self) -> OwnerRecord | None:
        return self._lost_to

    def _beat(self) -> None:
        path = self.run_dir / OWNER_FILE
        while not self._stopping.wait(self.heartbeat_every_s):
            try:
                found = _read(path)
                if found is None or found[0] != self._content:
                    self._lost_to = found[1] if found is not None else UNKNOWN_OWNER
                    return
                self._record["heartbeat"] = time.time()
                content = _encode(self._record)
                staging = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
                staging.write_bytes(content)
                os.replace(staging, path)
                self._content = content
            except OSError:
                continue  # a transient filesystem error: the next beat tries again, well within the limit

    def release(self) -> None:
        """Stop the heartbeat, remove the record (if still ours) and release the lock."""
        self._stopping.set()
        if self._beating.is_alive() and self._beating is not threading.current_thread():
            self._beating.join()
        if not self.lost:
            _remove_if(self.run_dir / OWNER_FILE, self._content)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # after the record is gone: a process that locks next finds no record
            self._lock_fd = None

    def __enter__(self) -> "TrialOwnership":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2) + "\n").encode()


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
