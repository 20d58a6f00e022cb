"""``drivelab watch --live``: the dashboard in an OpenCV window on a virtual display (Xvfb), paced at real time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.viewer.conftest import assert_no_blank_panel, sigint_as_at_a_terminal
from tests.xvfb import virtual_display

BACKGROUND = (28, 30, 36)  # the header bar over the chase view


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    with virtual_display(tmp_path_factory.mktemp("xvfb")) as display:
        yield display


def watch_live(display, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "drivelab.cli", "watch", "--live", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=display.env,
                            preexec_fn=sigint_as_at_a_terminal)


def dashboard_on_screen(display) -> np.ndarray | None:
    """The window's picture when the dashboard is up (no window manager: the window sits at the top left)."""
    shot = display.screenshot()[:720, :1280]
    if tuple(int(c) for c in shot[5, 5]) != BACKGROUND:
        return None
    return shot


def test_the_live_window_shows_the_dashboard_at_real_time_and_closes(display):
    process = watch_live(display, "--close", "--option", "max_episode_s=5", "--json")
    shot, deadline = None, time.monotonic() + 120
    while shot is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.3)
        shot = dashboard_on_screen(display)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert stderr == ""  # no warnings from the window toolkit either
    assert shot is not None, "the dashboard never showed on the screen"
    assert_no_blank_panel(shot)
    report = json.loads(stdout)
    assert report["live"] and report["video"] is None and report["speed"] == 1.0
    # 5 simulated seconds take 5 s of wall time, within 10 %.
    assert 4.5 <= report["episode_wall_s"][0] <= 5.5, report["episode_wall_s"]


def test_without_close_the_window_waits_on_the_card(display):
    process = watch_live(display, "--option", "max_episode_s=1")
    try:
        # The episode (1 s) is long over after this, yet the window stays on the card, waiting for a key.
        deadline = time.monotonic() + 120
        while dashboard_on_screen(display) is None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
        time.sleep(4.0)
        assert process.poll() is None, process.communicate()[1]
        card = display.screenshot()[:720, :1280]
        assert tuple(int(c) for c in card[5, 5]) == BACKGROUND and tuple(int(c) for c in card[650, 300]) == BACKGROUND
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
