"""The PyBullet GUI as ``drivelab drive --render human`` opens it, under a virtual X server (Xvfb).

Screenshots come from Xvfb itself: started with ``-fbdir DIR``, it keeps its screen in
``DIR/Xvfb_screen0`` as an XWD image, which :func:`read_xwd` reads with numpy, so no screenshot tool is
needed. Without Xvfb (or without OpenGL under it) the GUI tests skip, saying why; ``make test`` installs
Debian's package ``xvfb`` when it can.

What they check, each against what the GUI showed before it was fixed (thresholds from screenshots of
both; the old code fails each check):

- no debug panels: PyBullet's Explorer, Params and synthetic-camera preview panels (near-white, neutral
  grey) covered the left, right and bottom of its 1024x768 window;
- a clean road: the grass box, asphalt and markings lay 1-2 mm apart and fought in the depth buffer, so
  grass streaked through the asphalt around the car, and from 80 m away hid most of the road;
- wheels: the tyres lay inside the body's footprint, and the chase camera saw none (in the GUI, and in
  the ``rgb_array`` chase view, which needs no display);
- real-time pacing: an episode of 10 simulated seconds takes 10 s of wall time (5 s at ``--speed 2``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.xvfb import virtual_display

SCREEN = (1280, 800)
WINDOW = (1024, 768)  # PyBullet's GUI window, at the screen's top left (Xvfb runs no window manager)


# ------------------------------------------------------------------------------------ the display
@pytest.fixture(scope="module")
def display(tmp_path_factory):
    """A virtual X server where PyBullet's GUI opens (skips when Xvfb or OpenGL under it is missing)."""
    with virtual_display(tmp_path_factory.mktemp("xvfb")) as display:
        # PyBullet's GUI needs OpenGL through GLX (Mesa's, on a machine without a GPU): without it, skip too.
        code = "import pybullet as p; p.connect(p.GUI); print('GUI open', flush=True); p.disconnect()"
        probe = subprocess.run([sys.executable, "-c", code], env=display.env, capture_output=True, text=True, timeout=60)
        if probe.returncode != 0 or "GUI open" not in probe.stdout:  # without a GL context PyBullet may exit with 0
            lines = (probe.stderr + probe.stdout).strip().splitlines() or ["no message"]
            pytest.skip(f"PyBullet's GUI does not open under Xvfb here (no OpenGL/GLX?): {lines[-1]}")
        yield display


def drive_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "drivelab.cli", "drive", "--render", "human", "--episodes", "1",
            "--seed", "2", "--json", *args]


# ------------------------------------------------------------------------------------ what pixels are
def pixel_classes(image: np.ndarray) -> dict[str, np.ndarray]:
    """Masks of what the GUI draws, from its colours as lit in the GUI (measured on screenshots)."""
    pixels = image.astype(int)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    spread, brightness = np.ptp(pixels, axis=2), pixels.mean(axis=2)
    return {
        "car": (r > 100) & (r > 2.5 * g) & (r > 2.5 * b),  # the red body: lit top and shaded back
        "grass": (g > r + 25) & (g > b + 25),
        "asphalt": (spread <= 8) & (brightness >= 24) & (brightness <= 80),  # (35, 35, 38) in the GUI
        "marking": (spread <= 12) & (brightness > 80),
        "tyre": pixels.max(axis=2) < 26,  # tyres (11..20 in the GUI), darker than any asphalt
        "panel": (spread < 12) & (brightness > 215),  # the panels' near-white greys; the sky is (178, 178, 204)
    }


def car_box(classes: dict[str, np.ndarray]) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(classes["car"])
    assert len(rows) > 1500, f"the car is not in view ({len(rows)} red pixels)"
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


# Where PyBullet draws its panels in its 1024x768 window (rows, columns), from a screenshot with them shown.
PANELS = {
    "Explorer and camera previews (left)": (slice(60, 700), slice(10, 245)),
    "Params (right)": (slice(50, 640), slice(780, 1010)),
    "log (bottom)": (slice(650, 745), slice(250, 1020)),
    "menu bar (top)": (slice(0, 18), slice(0, 1020)),
}


def panel_fractions(classes: dict[str, np.ndarray]) -> dict[str, float]:
    return {name: float(classes["panel"][rows, cols].mean()) for name, (rows, cols) in PANELS.items()}


def grass_streaks(classes: dict[str, np.ndarray], top: int) -> int:
    """Grass pixels in thin horizontal streaks inside the road: vertical runs of at most 6 grass pixels
    with road (asphalt, marking, car or tyre) right above and below, from a little above the car down.

    Depth fighting between the grass box and the asphalt draws exactly these; a clean road has none
    (a road edge has grass on one side only, and the row band stays clear of the horizon)."""
    road = classes["asphalt"] | classes["marking"] | classes["car"] | classes["tyre"]
    grass = classes["grass"]
    streaks = 0
    for column in range(grass.shape[1]):
        g, rd = grass[top:, column], road[top:, column]
        row = 1
        while row < len(g) - 1:
            if g[row] and rd[row - 1]:
                end = row
                while end < len(g) and g[end] and end - row <= 6:
                    end += 1
                if end < len(g) and rd[end] and end - row <= 6:
                    streaks += end - row
                row = end
            row += 1
    return streaks


def check_screenshot(image: np.ndarray, saved: Path) -> dict[str, float]:
    """The assertions on one mid-episode screenshot; returns the figures they checked."""
    window = image[:WINDOW[1], :WINDOW[0]]
    classes = pixel_classes(window)
    top, bottom, left, right = car_box(classes)
    figures: dict[str, float] = {}

    # The scene fills the window: grass and road (the road hidden by grass is depth fighting at its worst),
    # and no panel-grey where the panels were.
    assert classes["grass"].mean() > 0.2, f"no scene in the window ({saved})"
    figures["asphalt fraction"] = float(classes["asphalt"].mean())
    assert classes["asphalt"].mean() > 0.05, \
        f"the road is not drawn: asphalt covers {classes['asphalt'].mean():.1%} of the window (hidden by the grass? {saved})"
    for name, fraction in panel_fractions(classes).items():
        figures[f"panel {name}"] = fraction
        assert fraction < 0.01, f"the {name} debug panel is shown: {fraction:.0%} of its area is panel grey ({saved})"

    # A clean road: no grass streaks through it, no dark streaks anywhere but the car's tyres, and plain
    # asphalt in the lane the car has just driven (below it in the picture; ahead of it, a bend may bring
    # a marking into any fixed window).
    streaks = figures["grass streak pixels"] = grass_streaks(classes, max(0, top - 80))
    assert streaks <= 5, f"{streaks} pixels of grass streak through the road around the car (depth fighting; {saved})"
    dark = classes["tyre"].copy()
    dark[max(0, top - 20):bottom + 21, max(0, left - 20):right + 21] = False
    figures["dark pixels away from the car"] = float(dark.sum())
    assert dark.sum() <= 20, f"{dark.sum()} near-black pixels away from the car: dark streaks ({saved})"
    half, centre = max(4, (right - left) // 4), (left + right) // 2
    lane = (slice(bottom + 10, min(bottom + 70, WINDOW[1])), slice(centre - half, centre + half))
    luminance = window[lane].astype(float).mean(axis=2)
    figures["asphalt fraction behind the car"] = float(classes["asphalt"][lane].mean())
    figures["asphalt std behind the car"] = float(luminance.std())
    assert classes["asphalt"][lane].mean() > 0.95, f"the lane behind the car is not plain asphalt ({saved})"
    assert luminance.std() < 3.0, f"the asphalt behind the car is not uniform: std {luminance.std():.1f} ({saved})"

    # The wheels: tyre-black pixels at both sides of the body.
    middle = (left + right) // 2
    rows = slice(top, bottom + 1)
    figures["tyre pixels left"] = float(classes["tyre"][rows, left - 15:middle].sum())
    figures["tyre pixels right"] = float(classes["tyre"][rows, middle:right + 16].sum())
    assert figures["tyre pixels left"] >= 40 and figures["tyre pixels right"] >= 40, \
        f"wheels not visible: {figures['tyre pixels left']:.0f} / {figures['tyre pixels right']:.0f} tyre pixels " \
        f"left / right of the car ({saved})"
    return figures


def test_the_rgb_array_chase_view_shows_the_wheels_too():
    """``render_mode="rgb_array"`` (PyBullet's TinyRenderer, no display needed): tyres at both sides of the car
    (48 pixels each at 320x240 on this track, none before the tyres were drawn outboard of the body)."""
    import gymnasium as gym

    import drivelab  # noqa: F401

    env = gym.make("DriveLab/LaneKeep-v0", render_mode="rgb_array")
    env.reset(seed=2)
    for _ in range(60):
        env.step(np.zeros(1, np.float32))
    classes = pixel_classes(env.render())
    env.close()
    rows, cols = np.nonzero(classes["car"])
    assert len(rows) > 400, f"the car is not in view ({len(rows)} red pixels)"
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    middle = (left + right) // 2
    tyres = classes["tyre"][top:bottom + 1, left - 8:middle].sum(), classes["tyre"][top:bottom + 1, middle:right + 9].sum()
    assert min(tyres) >= 20, f"wheels not visible: {tyres[0]} / {tyres[1]} tyre pixels left / right of the car"


def test_the_gui_shows_the_scene_alone_a_clean_road_and_the_wheels(display, tmp_path):
    import cv2

    process = subprocess.Popen(drive_command("--option", "max_episode_s=8"), env=display.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait for the chase camera to show the car, then let it drive for a while (paced: real time).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if pixel_classes(display.screenshot()[:WINDOW[1], :WINDOW[0]])["car"].sum() > 1500:
                break
            time.sleep(0.2)
        time.sleep(3.0)
        image = display.screenshot()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err[-2000:]
    json.loads(out)  # --json: one object on stdout, the GUI's own prints kept off it
    saved = tmp_path / "gui.png"
    cv2.imwrite(str(saved), image[:, :, ::-1])
    figures = check_screenshot(image, saved)
    print(f"\nGUI screenshot ({saved}): " + ", ".join(f"{name} {value:.3g}" for name, value in figures.items()))


FAR_VIEWS = ((80, -20), (150, -30))  # camera distance (m) and pitch (degrees)
FAR_VIEW_SCRIPT = """
import math, sys, time
import gymnasium as gym
import drivelab
env = gym.make("DriveLab/LaneKeep-v0", render_mode="human")
env.reset(seed=2)
u = env.unwrapped
state = u.vehicle_state
for distance, pitch in %r:
    u.world.client.resetDebugVisualizerCamera(distance, math.degrees(state.yaw_rad) - 90, pitch, [state.x_m, state.y_m, 0.5])
    time.sleep(1.5)  # the GUI draws a few frames of the new view
    print("ready", distance, flush=True)
    sys.stdin.readline()
env.close()
""" % (FAR_VIEWS,)


def test_the_road_stays_clean_seen_from_afar(display, tmp_path):
    """The whole track from 80 m and 150 m away: the grass box under the road streaked through it there even
    when centimetres lay between them (its huge triangles' depth is coarse), and hid most of it at 80 m."""
    import cv2

    process = subprocess.Popen([sys.executable, "-c", FAR_VIEW_SCRIPT], env=display.env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for distance, _ in FAR_VIEWS:
            line = ""
            while not line.startswith("ready"):  # the GUI's own prints come on stdout too
                line = process.stdout.readline()
                assert line, f"the GUI script ended early: {process.stderr.read()[-2000:]}"
            image = display.screenshot()
            saved = tmp_path / f"far_{distance}m.png"
            cv2.imwrite(str(saved), image[:, :, ::-1])
            classes = pixel_classes(image[:WINDOW[1], :WINDOW[0]])
            assert classes["asphalt"].mean() > 0.005, f"from {distance} m the road is not drawn ({saved})"
            streaks = grass_streaks(classes, 0)
            assert streaks <= 20, f"from {distance} m, {streaks} pixels of grass streak through the road ({saved})"
            process.stdin.write("next\n")
            process.stdin.flush()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_drive_render_human_shows_the_episode_in_real_time(display):
    """An episode of 10 simulated seconds takes 10 s of wall time, 5 s at ``--speed 2`` (``wall_time_s`` in
    ``drive --json``: from the episode's first observation to its last step, so Python's and PyBullet's
    start-up do not count). The same episode unpaced (``--speed 0``) is the baseline: the loop itself takes
    a fraction of that, so the time is the pacing's.

    Never early, on any run. Late is another matter on a small machine: PyBullet's GUI alone keeps two cores
    busy (its physics thread spins waiting for commands, Mesa's software renderer draws without pause under
    Xvfb), and until those renderer threads got a lower priority (drivelab.envs.world) a tenth of the steps
    waited 0.1 s for the CPU on a loaded 2-core machine, and runs ended up to 1.4 s late. The pacer catches
    up after a stall, but not after one in the last steps, so a run that ends late is run again, up to
    three runs in all.
    """
    def episode(speed: str) -> dict:
        result = subprocess.run(drive_command("--option", "max_episode_s=10", "--speed", speed), env=display.env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)["episodes"][0]

    unpaced = episode("0")
    assert unpaced["episode_time_s"] == 10.0  # the driver kept the car on the road for the whole episode
    assert unpaced["wall_time_s"] < 2.5, f"unpaced, the loop alone took {unpaced['wall_time_s']:.2f} s"
    for speed, expected_s in (("1", 10.0), ("2", 5.0)):
        runs = []
        for _ in range(3):
            paced = episode(speed)
            assert paced["episode_time_s"] == 10.0
            runs.append(round(paced["wall_time_s"], 3))
            assert runs[-1] >= 0.9 * expected_s, f"--speed {speed} showed 10 s of driving in {runs[-1]} s: too fast"
            if runs[-1] <= 1.1 * expected_s:
                break
        assert runs[-1] <= 1.1 * expected_s, \
            f"--speed {speed}: 10 s of driving took {runs} s of wall time (unpaced: {unpaced['wall_time_s']:.2f} s)"
