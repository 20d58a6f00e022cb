"""One writer per trial: the owner record and lock of drivelab.experiments.ownership, in-process and
with racing processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from drivelab.experiments.ownership import (HOST, OWNER_FILE, STALE_AFTER_ENV, TrialOwnedElsewhere, TrialOwnership,
                                            current_owner, stale_after_s)

OTHER_HOST = "another-host.example"


def write_record(run_dir: Path, host: str, pid: int, heartbeat_age_s: float) -> bytes:
    run_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    content = json.dumps({"host": host, "pid": pid, "started": now - 3600, "heartbeat": now - heartbeat_age_s,
                          "token": "0123456789abcdef"}).encode()
    (run_dir / OWNER_FILE).write_bytes(content)
    return content


def dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # reaped: the pid names no process now
    return finished.pid


def wait_for(condition, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_fresh_record_from_another_host_is_respected_and_left_as_it_is(tmp_path):
    content = write_record(tmp_path, OTHER_HOST, 4242, heartbeat_age_s=3)
    with pytest.raises(TrialOwnedElsewhere) as refused:
        TrialOwnership.acquire(tmp_path)
    message = re.search(rf"is being run by pid 4242 on host {re.escape(OTHER_HOST)} \(heartbeat (\d+) s ago\)",
                        str(refused.value))
    assert message and int(message.group(1)) >= 3
    assert (tmp_path / OWNER_FILE).read_bytes() == content
    assert current_owner(tmp_path).pid == 4242


def test_an_old_heartbeat_from_another_host_is_taken_over(tmp_path):
    write_record(tmp_path, OTHER_HOST, 4242, heartbeat_age_s=3600)
    assert current_owner(tmp_path) is None
    with TrialOwnership.acquire(tmp_path):
        record = json.loads((tmp_path / OWNER_FILE).read_text())
        assert (record["host"], record["pid"]) == (HOST, os.getpid())
    assert not (tmp_path / OWNER_FILE).exists()  # released: the record goes, the lock file stays
    assert (tmp_path / "owner.lock").exists()


@pytest.mark.parametrize("use_flock", [True, False])
def test_a_dead_pid_on_this_host_is_taken_over_even_with_a_fresh_heartbeat(tmp_path, use_flock):
    write_record(tmp_path, HOST, dead_pid(), heartbeat_age_s=0)
    with TrialOwnership.acquire(tmp_path, use_flock=use_flock):
        assert json.loads((tmp_path / OWNER_FILE).read_text())["pid"] != 0


def test_without_working_locks_a_live_pid_on_this_host_is_respected_until_its_heartbeat_is_stale(tmp_path):
    # This process stands for the other owner: alive, on this host.
    write_record(tmp_path, HOST, os.getpid(), heartbeat_age_s=1)
    with pytest.raises(TrialOwnedElsewhere):
        TrialOwnership.acquire(tmp_path, use_flock=False)
    # A heartbeat past the limit means a stopped owner, or another process under a reused pid.
    with TrialOwnership.acquire(tmp_path, use_flock=False, stale_after=0.5):
        pass


def test_the_stale_limit_comes_from_the_environment_and_bad_values_are_refused(tmp_path, monkeypatch):
    write_record(tmp_path, OTHER_HOST, 4242, heartbeat_age_s=5)
    assert current_owner(tmp_path) is not None  # 5 s is fresh under the default 60 s
    monkeypatch.setenv(STALE_AFTER_ENV, "2")
    assert stale_after_s() == 2.0 and current_owner(tmp_path) is None
    for bad in ("soon", "0", "-3", "inf"):
        monkeypatch.setenv(STALE_AFTER_ENV, bad)
        with pytest.raises(ValueError, match=f"{STALE_AFTER_ENV} must be a number of seconds > 0"):
            stale_after_s()
    result = subprocess.run([sys.executable, "-m", "drivelab.cli", "train", "no-such.yaml"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"drivelab: {STALE_AFTER_ENV} must be a number of seconds > 0, got 'inf'"]


def test_the_heartbeat_is_refreshed_and_a_takeover_is_noticed(tmp_path):
    with TrialOwnership.acquire(tmp_path, stale_after=0.4) as owner:  # a beat every 0.1 s
        first = json.loads((tmp_path / OWNER_FILE).read_text())["heartbeat"]
        wait_for(lambda: json.loads((tmp_path / OWNER_FILE).read_text())["heartbeat"] > first)
        assert not owner.lost
        # Another host decided this owner was dead (its heartbeat had stalled) and took over.
        theirs = write_record(tmp_path, OTHER_HOST, 4242, heartbeat_age_s=0)
        wait_for(lambda: owner.lost)
        assert owner.lost_to.host == OTHER_HOST
    assert (tmp_path / OWNER_FILE).read_bytes() == theirs  # not removed on release: it is not ours


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from drivelab.experiments.ownership import TrialOwnedElsewhere, TrialOwnership

    run_dir, result, release, start_at = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    while time.time() < start_at:  # line the racers up
        pass
    try:
        with TrialOwnership.acquire(run_dir, use_flock=False):
            result.write_text("won")
            while not release.exists():  # hold it until every racer has answered
                time.sleep(0.01)
    except TrialOwnedElsewhere:
        result.write_text("refused")
""")


@pytest.mark.parametrize("before", ["no record", "a stale record"])
def test_racing_processes_without_locks_make_exactly_one_owner(tmp_path, before):
    run_dir, racers = tmp_path / "trial", 6
    if before == "a stale record":
        write_record(run_dir, OTHER_HOST, 4242, heartbeat_age_s=3600)
    results = [tmp_path / f"racer-{index}" for index in range(racers)]
    release = tmp_path / "release"
    start_at = time.time() + 1.5
    processes = [subprocess.Popen([sys.executable, "-c", RACER, str(run_dir), str(result), str(release), str(start_at)])
                 for result in results]
    try:
        wait_for(lambda: all(result.exists() and result.read_text() for result in results), deadline_s=120)
    finally:
        release.touch()
        for process in processes:
            process.wait(timeout=60)
    assert sorted(result.read_text() for result in results) == ["refused"] * (racers - 1) + ["won"]
    assert all(process.returncode == 0 for process in processes)


def test_a_trial_found_done_once_owned_is_not_run_again(tmp_path):
    # As when another process finished the trial between this one's look at its status and its lock.
    from drivelab.experiments.config import parse_config, resolve_trial
    from drivelab.experiments.trial import TrialAlreadyDone, prepare_run_dir, run_trial

    config = parse_config({"name": "done", "env": {"id": "DriveLab/LaneKeep-v0"},
                           "agents": [{"name": "driver", "algo": "rule_based"}], "seeds": [0], "budget_steps": 100,
                           "tracking": {"wandb": {"mode": "disabled"}}})
    trial, run_dir = resolve_trial(config, "driver", 0), tmp_path / "trial"
    prepare_run_dir(trial, run_dir)
    status = json.dumps({"state": "done", "attempts": 1})
    (run_dir / "status.json").write_text(status)
    with pytest.raises(TrialAlreadyDone) as done:
        run_trial(trial, run_dir)
    assert done.value.status == {"state": "done", "attempts": 1}
    assert (run_dir / "status.json").read_text() == status
    assert sorted(path.name for path in run_dir.iterdir()) == ["config.yaml", "owner.lock", "status.json"]
