"""The dashboard's panels. Each draws one pipeline stage, from a :class:`~drivelab.viewer.probe.StepView`,
into its own region of the frame (an RGB ``uint8`` array view), with OpenCV.

Colours are RGB: the frames are RGB arrays, and OpenCV writes a colour's channels in the order given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from drivelab.agents.decisions import CATEGORICAL, GAUSSIAN, Q_VALUES, RANDOM, RULE_BASED
from drivelab.envs.camera import Box3D, CameraMount, CameraSpec, Palette, RoadCamera, camera_pose
from drivelab.envs.vehicle import BODY_VISUAL_WIDTH_M, TYRE, WHEEL_VISUAL_OUTBOARD_M, VehicleSpec
from drivelab.viewer.probe import StepView

BACKGROUND = (28, 30, 36)
PANEL = (38, 41, 49)
BORDER = (70, 74, 86)
TEXT = (225, 228, 235)
DIM = (150, 155, 168)
ACCENT = (255, 196, 64)  # the chosen action, the plan
TRUTH = (90, 210, 120)
ESTIMATE = (255, 140, 60)
COMMAND = (90, 170, 255)
MEASURED = (240, 240, 240)
THROTTLE = (80, 200, 110)
BRAKE = (235, 80, 70)
ASPHALT = (70, 72, 78)
GRASS = (52, 92, 50)
MARKING = (235, 235, 235)
TRAIL = (90, 190, 255)
EGO = (230, 50, 40)
OTHER = (70, 130, 240)

FONT = cv2.FONT_HERSHEY_SIMPLEX
SMALL = 0.42
NORMAL = 0.5
TITLE = 0.5


@dataclass(frozen=True)
class Region:
    """A rectangle of the frame: left, top, width, height (pixels)."""

    x: int
    y: int
    w: int
    h: int

    def of(self, frame: np.ndarray) -> np.ndarray:
        return frame[self.y:self.y + self.h, self.x:self.x + self.w]


def text(image: np.ndarray, words: str, x: int, y: int, color=TEXT, scale: float = SMALL, thickness: int = 1) -> None:
    cv2.putText(image, words, (int(x), int(y)), FONT, scale, color, thickness, cv2.LINE_AA)


def panel_frame(image: np.ndarray, title: str) -> None:
    """Clear a panel and draw its frame and title."""
    image[:] = PANEL
    h, w = image.shape[:2]
    cv2.rectangle(image, (0, 0), (w - 1, h - 1), BORDER, 1)
    text(image, title, 8, 18, DIM, TITLE)


def card_text(frame: np.ndarray, title: str, subtitle: str, rows, metrics: dict, value_x: int) -> None:
    """An episode card's words: the frame cleared, a title, a subtitle, and a row per ``(label, key, format)``
    of ``rows`` with its value in ``metrics`` (booleans as yes/no, a missing value as "-")."""
    frame[:] = BACKGROUND
    text(frame, title, 40, 70, TEXT, 1.0, 2)
    text(frame, subtitle, 40, 110, DIM, 0.6, 1)
    y = 190
    for label, key, form in rows:
        value = metrics.get(key)
        shown = ("yes" if value else "no") if isinstance(value, bool) else (form.format(value) if value is not None else "-")
        text(frame, label, 60, y, DIM, 0.9, 2)
        text(frame, shown, value_x, y, TEXT, 0.9, 2)
        y += 60


def sized(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A copy of ``frame`` at ``size`` (width, height)."""
    if (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame.copy()
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def hbar(image: np.ndarray, x: int, y: int, w: int, h: int, fraction: float, color, centred: bool = False) -> None:
    """A horizontal bar: from the left (``fraction`` in 0..1) or from the middle (``fraction`` in -1..1)."""
    cv2.rectangle(image, (x, y), (x + w, y + h), BORDER, 1)
    fraction = float(np.clip(fraction, -1.0, 1.0) if centred else np.clip(fraction, 0.0, 1.0))
    if centred:
        mid = x + w // 2
        end = int(round(mid + fraction * (w // 2)))
        cv2.rectangle(image, (min(mid, end), y + 1), (max(mid, end), y + h - 1), color, -1)
        cv2.line(image, (mid, y - 2), (mid, y + h + 2), DIM, 1)
    elif fraction > 0:
        cv2.rectangle(image, (x + 1, y + 1), (x + 1 + int(round(fraction * (w - 2))), y + h - 1), color, -1)


def marker(image: np.ndarray, x: int, y: int, h: int, color, thickness: int = 2) -> None:
    cv2.line(image, (int(x), y - 3), (int(x), y + h + 3), color, thickness)


# -- the 3-D chase view ----------------------------------------------------------------------

DASHBOARD_CHASE_MOUNT = CameraMount(forward_m=-9.0, height_m=3.6, pitch_deg=12.0)
CABIN_COLOR = (0.55, 0.12, 0.09)
OTHER_BODY = (0.27, 0.51, 0.94)  # the other vehicles, blue as on the map


class ChaseView:
    """The car from behind and above, drawn by the lab's own camera (the road's homography and boxes)."""

    def __init__(self, width: int, height: int, vehicle: VehicleSpec, fov_deg: float = 55.0) -> None:
        self.camera = RoadCamera(CameraSpec(width=width, height=height, fov_deg=fov_deg, mount=DASHBOARD_CHASE_MOUNT))
        self.vehicle = vehicle
        self.palette = Palette()

    def set_road(self, road) -> None:
        self.camera.set_road(road, self.palette)

    def car_boxes(self, x_m: float, y_m: float, yaw_rad: float, steer_rad: float) -> list[Box3D]:
        """The car as the camera draws it, as PyBullet draws it (drivelab.envs.vehicle's visual shapes): four
        wheels outboard of a narrower body (the front ones steered), the body, and a cabin on it."""
        s = self.vehicle
        c, si = math.cos(yaw_rad), math.sin(yaw_rad)
        boxes = []
        for forward, wheel_yaw in ((s.wheelbase_m / 2, yaw_rad + steer_rad), (-s.wheelbase_m / 2, yaw_rad)):
            for side in (1, -1):
                lateral = side * (s.track_m / 2 + WHEEL_VISUAL_OUTBOARD_M)
                wx, wy = x_m + c * forward - si * lateral, y_m + si * forward + c * lateral
                boxes.append(Box3D(wx, wy, wheel_yaw, 2 * s.wheel_radius_m, s.wheel_width_m, 2 * s.wheel_radius_m,
                                   bottom_m=0.0, color=TYRE))
        boxes.append(Box3D(x_m, y_m, yaw_rad, s.length_m, BODY_VISUAL_WIDTH_M, s.body_height_m, bottom_m=s.wheel_radius_m,
                           color=self.palette.body))
        cabin_x, cabin_y = x_m - c * 0.3, y_m - si * 0.3
        boxes.append(Box3D(cabin_x, cabin_y, yaw_rad, 0.5 * s.length_m, 0.9 * BODY_VISUAL_WIDTH_M, 0.45,
                           bottom_m=s.wheel_radius_m + s.body_height_m, color=CABIN_COLOR))
        return boxes

    def draw(self, image: np.ndarray, view: StepView) -> None:
        pose = camera_pose(DASHBOARD_CHASE_MOUNT, view.x_m, view.y_m, view.yaw_rad)
        s = self.vehicle
        others = [Box3D(x, y, yaw, s.length_m, s.width_m, s.body_height_m + s.wheel_radius_m, bottom_m=0.0, color=OTHER_BODY)
                  for x, y, yaw in view.others]
        rendered = self.camera.render(pose, others + self.car_boxes(view.x_m, view.y_m, view.yaw_rad, view.steer_rad))
        image[:] = rendered


# -- the agent's own input -------------------------------------------------------------------


def draw_agent_input(image: np.ndarray, view: StepView, feature_scales: Sequence[float]) -> None:
    """The agent's camera image (and its older stacked frames), or its state features as labelled bars."""
    h, w = image.shape[:2]
    if view.image is not None:
        panel_frame(image, "agent input: camera" + (f" ({view.stacked_frames} frames stacked)" if view.stacked_frames > 1 else ""))
        side = min(h - 34, w - 80 if view.stacked_frames > 1 else w - 16)
        big = cv2.resize(view.image[..., :3], (side, side), interpolation=cv2.INTER_NEAREST)
        image[26:26 + side, 8:8 + side] = big
        stack = view.decision.agent_input
        if view.stacked_frames > 1 and stack is not None:
            thumb = min(56, (h - 34) // view.stacked_frames - 4)
            for k in range(view.stacked_frames):  # oldest at the top, as the agent's stack is ordered
                frame = np.ascontiguousarray(stack[..., 3 * k:3 * k + 3])
                y = 26 + k * (thumb + 4)
                image[y:y + thumb, w - thumb - 8:w - 8] = cv2.resize(frame, (thumb, thumb), interpolation=cv2.INTER_AREA)
        return
    title = "agent input: perceived state" if view.perceived is not None else "agent input: state"
    panel_frame(image, title)
    names, values = view.feature_names, view.features
    if values is None:
        return
    rows = len(names)
    row_h = max(12, (h - 32) // max(rows, 1))
    bar_x, bar_w = 150, w - 150 - 70
    for i, (name, value) in enumerate(zip(names, values)):
        y = 30 + i * row_h
        text(image, name.replace("_1pm", "").replace("curvature_", "curv "), 8, y + 10, TEXT, 0.38)
        scale = feature_scales[i] if i < len(feature_scales) else 1.0
        estimated = view.perceived is not None and name in view.perceived
        hbar(image, bar_x, y + 1, bar_w, max(row_h - 6, 6), float(value) / (2 * scale), ESTIMATE if estimated else COMMAND,
             centred=True)
        text(image, f"{value:+.3f}", bar_x + bar_w + 6, y + 10, DIM, 0.38)


# -- bird's-eye map --------------------------------------------------------------------------


def _stations(road) -> np.ndarray:
    """Arc lengths every metre along the road, its end included: where its lines are drawn through."""
    return np.append(np.arange(0.0, road.length_m, 1.0), road.length_m)


def _whole_track(road, side: int, margin_px: int):
    """World x, y → pixels of a ``side``×``side`` square that holds the whole track, north up, ``margin_px``
    in from its edges (and 5 m of verge around the track); also the scale, pixels per metre."""
    low = road.points.min(axis=0) - 5.0
    scale = (side - 2 * margin_px) / ((road.points.max(axis=0) - road.points.min(axis=0)).max() + 10.0)

    def px(xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.round(np.column_stack([margin_px + (xy[:, 0] - low[0]) * scale,
                                         side - margin_px - (xy[:, 1] - low[1]) * scale])).astype(np.int32)

    return px, scale


class BirdsEyeMap:
    """The road from above (lanes, edges), the car and its trail, the plan, other vehicles; north up,
    centred on the car, with the whole track in a corner."""

    def __init__(self, width: int, height: int, m_per_px: float = 0.2) -> None:
        self.width, self.height, self.m_per_px = width, height, m_per_px
        self.static: np.ndarray | None = None
        self.origin, self._rows = np.zeros(2), 0
        self.overview: np.ndarray | None = None
        self._overview_px = None

    def set_road(self, road) -> None:
        """Draw the track once per episode; every frame then crops it around the car."""
        m = self.m_per_px
        pad = np.array([self.width, self.height]) * m  # room to crop a whole window around any point of the road
        low = road.points.min(axis=0) - pad
        high = road.points.max(axis=0) + pad
        size = np.ceil((high - low) / m).astype(int) + 1
        static = np.empty((size[1], size[0], 3), np.uint8)
        static[:] = GRASS
        self.origin, self._rows = low, int(size[1])
        s = _stations(road)
        centre = self._px(road.position(s, 0.0))
        cv2.polylines(static, [centre], road.closed, ASPHALT, max(1, int(round(2 * (road.half_width_m + road.shoulder_m) / m))),
                      cv2.LINE_AA)
        for d in road.lane_lines_d():
            edge = abs(abs(d) - road.half_width_m) < 1e-6
            points = self._px(road.position(s, d))
            if edge:
                cv2.polylines(static, [points], road.closed, MARKING, 1, cv2.LINE_AA)
            else:  # dashed lane lines
                for start in range(0, len(points) - 3, 6):
                    cv2.polylines(static, [points[start:start + 3]], False, MARKING, 1, cv2.LINE_AA)
        self.static = static
        # The whole track, small, for the corner.
        side = min(self.width, self.height) // 3
        self._overview_px, _ = _whole_track(road, side, margin_px=4)
        overview = self.overview = np.empty((side, side, 3), np.uint8)
        overview[:] = PANEL
        cv2.rectangle(overview, (0, 0), (side - 1, side - 1), BORDER, 1)
        cv2.polylines(overview, [self._overview_px(road.position(s, 0.0))], road.closed, DIM, 2, cv2.LINE_AA)

    def _px(self, xy: np.ndarray) -> np.ndarray:
        """World x, y → static-map pixels (column, row), north up."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        col = (xy[:, 0] - self.origin[0]) / self.m_per_px
        row = self._rows - 1 - (xy[:, 1] - self.origin[1]) / self.m_per_px
        return np.round(np.column_stack([col, row])).astype(np.int32)

    def draw(self, image: np.ndarray, view: StepView, trail: np.ndarray, vehicle: VehicleSpec) -> None:
        centre = self._px(np.array([[view.x_m, view.y_m]]))[0]
        left, top = centre[0] - self.width // 2, centre[1] - self.height // 2
        image[:] = self.static[top:top + self.height, left:left + self.width]
        offset = np.array([left, top])
        if len(trail) > 1:
            cv2.polylines(image, [self._px(trail) - offset], False, TRAIL, 2, cv2.LINE_AA)
        if view.plan_xy is not None:
            cv2.polylines(image, [self._px(view.plan_xy) - offset], False, ACCENT, 2, cv2.LINE_AA)
        for x, y, yaw in view.others:
            self._car(image, x, y, yaw, vehicle, OTHER, offset)
        self._car(image, view.x_m, view.y_m, view.yaw_rad, vehicle, EGO, offset)
        h, w = image.shape[:2]
        cv2.rectangle(image, (0, 0), (w - 1, h - 1), BORDER, 1)
        text(image, f"bird's-eye ({self.m_per_px * self.width:.0f} m across)", 8, 18, TEXT, TITLE)
        legend_y = h - 10
        text(image, "trail", 8, legend_y, TRAIL)
        text(image, view.plan_label, 56, legend_y, ACCENT)
        if self.overview is not None:
            side = self.overview.shape[0]
            corner = image[6:6 + side, w - side - 6:w - 6]
            corner[:] = self.overview
            dot = self._overview_px(np.array([[view.x_m, view.y_m]]))[0]
            cv2.circle(corner, (int(dot[0]), int(dot[1])), 4, EGO, -1, cv2.LINE_AA)

    def _car(self, image, x, y, yaw, vehicle: VehicleSpec, color, offset) -> None:
        c, s = math.cos(yaw), math.sin(yaw)
        half_l, half_w = vehicle.length_m / 2, vehicle.width_m / 2
        corners = np.array([[x + c * dx - s * dy, y + s * dx + c * dy]
                            for dx, dy in ((half_l, half_w), (half_l, -half_w), (-half_l, -half_w), (-half_l, half_w))])
        cv2.fillConvexPoly(image, self._px(corners) - offset, color, cv2.LINE_AA)
        nose = self._px(np.array([[x + c * half_l, y + s * half_l]]))[0] - offset
        cv2.circle(image, (int(nose[0]), int(nose[1])), 2, MEASURED, -1)

    def draw_whole_track(self, image: np.ndarray, trail: np.ndarray, road) -> None:
        """The whole track with an episode's trail (for the episode card)."""
        image[:] = PANEL
        px, scale = _whole_track(road, min(image.shape[:2]), margin_px=8)
        cv2.polylines(image, [px(road.position(_stations(road), 0.0))], road.closed, ASPHALT,
                      max(2, int(round(2 * road.half_width_m * scale))), cv2.LINE_AA)
        if len(trail) > 1:
            cv2.polylines(image, [px(trail)], False, TRAIL, 2, cv2.LINE_AA)
            end = px(trail[-1:])[0]
            cv2.circle(image, (int(end[0]), int(end[1])), 5, EGO, -1, cv2.LINE_AA)


# -- perception ------------------------------------------------------------------------------

PERCEPTION_UNITS = {"lateral_offset_m": ("lateral offset", "m", 1.0), "heading_error_rad": ("heading error", "°", 180 / math.pi)}


def draw_perception(image: np.ndarray, view: StepView, lane_width_m: float, observation: str) -> None:
    """Perception's estimate beside the truth (``observation="perceived"``); otherwise what the agent reads instead."""
    h, w = image.shape[:2]
    if view.perceived is None:
        panel_frame(image, "perception")
        reads = {"camera": "pixels, end to end (no separate estimate)", "state": "the simulator's ground truth"}
        text(image, "the agent reads " + reads.get(observation, observation), 8, 44, TEXT, 0.42)
        text(image, "truth now:", 8, 72, DIM)
        text(image, f"lateral offset {view.lane_offset_m:+.3f} m", 8, 96, TRUTH, NORMAL)
        text(image, f"heading error {math.degrees(view.heading_error_rad):+.2f}°", 8, 120, TRUTH, NORMAL)
        _lane_strip(image, 8, 140, w - 16, lane_width_m, view.lane_offset_m, None)
        return
    panel_frame(image, "perception: estimate vs truth")
    text(image, "feature", 8, 42, DIM)
    text(image, "estimate", 150, 42, ESTIMATE)
    text(image, "truth", 222, 42, TRUTH)
    text(image, "error", 272, 42, DIM)
    y = 62
    for name, estimate in view.perceived.items():
        label, unit, factor = PERCEPTION_UNITS.get(name, (name.replace("curvature_", "curv ").replace("_1pm", ""), "1/m", 1.0))
        truth = view.truth[name]
        digits = 4 if unit == "1/m" else (2 if unit == "°" else 3)
        text(image, f"{label} ({unit})", 8, y, TEXT, 0.38)
        text(image, f"{estimate * factor:+.{digits}f}", 150, y, ESTIMATE, 0.38)
        text(image, f"{truth * factor:+.{digits}f}", 222, y, TRUTH, 0.38)
        text(image, f"{abs(estimate - truth) * factor:.{digits}f}", 272, y, DIM, 0.38)
        y += 18
    if "lateral_offset_m" in view.perceived:
        _lane_strip(image, 8, min(y + 8, h - 40), w - 16, lane_width_m, view.truth["lateral_offset_m"],
                    view.perceived["lateral_offset_m"])


def _lane_strip(image, x, y, w, lane_width_m, truth_m, estimate_m) -> None:
    """The lane seen from behind: its edges, the car's true position and perception's estimate of it."""
    cv2.rectangle(image, (x, y), (x + w, y + 22), ASPHALT, -1)
    for edge in (x, x + w):
        cv2.line(image, (edge, y), (edge, y + 22), MARKING, 2)
    mid = x + w / 2
    scale = w / lane_width_m

    def at(d):  # left is positive d; drawn from behind, left is left
        return int(round(mid - np.clip(d, -lane_width_m / 2, lane_width_m / 2) * scale))

    marker(image, at(truth_m), y + 2, 18, TRUTH, 3)
    if estimate_m is not None:
        marker(image, at(estimate_m), y + 2, 18, ESTIMATE, 2)
    text(image, "truth", x, y + 38, TRUTH, 0.38)
    if estimate_m is not None:
        text(image, "estimate", x + 50, y + 38, ESTIMATE, 0.38)


# -- control ---------------------------------------------------------------------------------


def draw_controls(image: np.ndarray, view: StepView, speed_history: np.ndarray, target_history: np.ndarray,
                  max_steer_rad: float) -> None:
    """Speed against target, steering command against the measured angle, pedals, reward and return."""
    h, w = image.shape[:2]
    panel_frame(image, "control")
    bar_x, bar_w = 92, w - 92 - 12
    top_speed = max(15.0, 1.25 * max(view.target_speed_mps or 0.0, view.speed_mps))
    y = 34
    text(image, "speed", 8, y + 10)
    hbar(image, bar_x, y, bar_w, 12, view.speed_mps / top_speed, MEASURED)
    if view.target_speed_mps is not None:
        marker(image, bar_x + view.target_speed_mps / top_speed * bar_w, y, 12, ACCENT)
    target = f" / {view.target_speed_mps:.1f}" if view.target_speed_mps is not None else ""
    text(image, f"{view.speed_mps:.1f}{target} m/s", bar_x, y + 28, DIM, 0.38)
    y += 40
    text(image, "steering", 8, y + 10)
    hbar(image, bar_x, y, bar_w, 12, 0.0, COMMAND, centred=True)
    mid = bar_x + bar_w / 2
    marker(image, mid - view.steer_command_rad / max_steer_rad * bar_w / 2, y, 12, COMMAND, 3)
    marker(image, mid - view.steer_rad / max_steer_rad * bar_w / 2, y, 12, MEASURED, 2)
    text(image, f"cmd {math.degrees(view.steer_command_rad):+.1f}°", bar_x, y + 28, COMMAND, 0.38)
    text(image, f"measured {math.degrees(view.steer_rad):+.1f}°", bar_x + 90, y + 28, MEASURED, 0.38)
    y += 40
    text(image, "throttle", 8, y + 10)
    hbar(image, bar_x, y, bar_w, 10, view.throttle, THROTTLE)
    y += 18
    text(image, "brake", 8, y + 10)
    hbar(image, bar_x, y, bar_w, 10, view.brake, BRAKE)
    y += 26
    if view.speed_pid:
        terms = view.speed_pid
        text(image, "speed PID  P {:+.2f}  I {:+.2f}  D {:+.2f}".format(
            terms.get("proportional", 0.0), terms.get("integral", 0.0), terms.get("derivative", 0.0)), 8, y, DIM, 0.38)
    y += 18
    text(image, f"reward {view.reward:+.3f}   return {view.episode_return:+.2f}", 8, y, TEXT, 0.42)
    # The last seconds of speed (white) and target speed (amber).
    plot_top, plot_bottom = y + 8, h - 8
    if plot_bottom - plot_top > 20 and len(speed_history) > 1:
        cv2.rectangle(image, (8, plot_top), (w - 8, plot_bottom), BORDER, 1)
        span = plot_bottom - plot_top - 4
        n = len(speed_history)
        xs = 9 + np.arange(n) * (w - 18) / max(n - 1, 1)
        for history, color in ((target_history, ACCENT), (speed_history, MEASURED)):
            if history is None or not np.isfinite(history).all():
                continue
            ys = plot_bottom - 2 - np.clip(history / top_speed, 0, 1) * span
            cv2.polylines(image, [np.round(np.column_stack([xs, ys])).astype(np.int32)], False, color, 1, cv2.LINE_AA)


# -- decision --------------------------------------------------------------------------------


def draw_decision(image: np.ndarray, view: StepView) -> None:
    """The chosen action and how sure the agent was: Q-values, probabilities, a Gaussian, or the controller's terms."""
    h, w = image.shape[:2]
    decision = view.decision
    labels = view.action_labels
    uniform = decision.kind == RANDOM and np.asarray(decision.action).dtype.kind in "iu" and len(labels) > 1
    if decision.kind in (Q_VALUES, CATEGORICAL) or uniform:
        chosen = int(np.asarray(decision.action).reshape(-1)[0])
        # The random agent's choice is uniform over the discrete actions: those are its probabilities.
        values = np.full(len(labels), 1.0 / len(labels)) if uniform else np.asarray(decision.values, dtype=float)
        panel_frame(image, {Q_VALUES: "decision: DQN Q-values", CATEGORICAL: "decision: action probabilities"}.get(
            decision.kind, "decision: random agent (uniform over the actions)"))
        low, high = float(values.min()), float(values.max())
        spread = max(high - low, 1e-6)
        row_h = max(10, min(24, (h - 40) // len(values)))
        names = [labels[i] if i < len(labels) else str(i) for i in range(len(values))]
        # Room for the longest name (an Atari game's "UPRIGHTFIRE"); steering levels fit the narrowest column.
        bar_x = max(60, 14 + max(cv2.getTextSize(name, FONT, 0.38, 1)[0][0] for name in names))
        for i, value in enumerate(values):
            y = 30 + i * row_h
            color = ACCENT if i == chosen else COMMAND
            text(image, names[i], 8, y + row_h - 6, color if i == chosen else TEXT, 0.38)
            probability = decision.kind != Q_VALUES
            fraction = value if probability else 0.1 + 0.9 * (value - low) / spread
            hbar(image, bar_x, y + 2, w - bar_x - 70, row_h - 5, fraction, color)
            text(image, f"{value:.3f}" if probability else f"{value:+.2f}", w - 64, y + row_h - 6, DIM, 0.38)
        return
    if decision.kind == GAUSSIAN:
        panel_frame(image, "decision: PPO Gaussian (mean ± std)")
        action = np.asarray(decision.action, dtype=float).reshape(-1)
        y = 40
        for i, (mean, std) in enumerate(zip(decision.mean, decision.std)):
            label = labels[i] if i < len(labels) else f"a{i}"
            text(image, label, 8, y + 14, TEXT)
            x0, bar_w = 80, w - 80 - 12
            cv2.rectangle(image, (x0, y), (x0 + bar_w, y + 20), BORDER, 1)

            def at(value):
                return int(round(x0 + (np.clip(value, -1.5, 1.5) + 1.5) / 3.0 * bar_w))

            cv2.rectangle(image, (at(mean - 2 * std), y + 6), (at(mean + 2 * std), y + 14), (60, 90, 140), -1)
            cv2.rectangle(image, (at(mean - std), y + 4), (at(mean + std), y + 16), COMMAND, -1)
            for edge in (-1.0, 1.0):
                marker(image, at(edge), y, 20, DIM, 1)
            marker(image, at(action[i]), y, 20, ACCENT, 3)
            text(image, f"mean {mean:+.3f}  std {std:.3f}  action {action[i]:+.3f}", 80, y + 38, DIM, 0.38)
            y += 58
        text(image, "box: ±1 std, band: ±2 std, amber: action", 8, h - 10, DIM, 0.36)
        return
    chosen = np.asarray(decision.action)
    action = chosen.astype(float).reshape(-1)
    if decision.kind == RULE_BASED and decision.reason:
        panel_frame(image, "decision: rule-based driver")
        text(image, decision.reason, 8, 84, TEXT, 0.42)
        y = 38
    elif decision.kind == RULE_BASED:
        panel_frame(image, "decision: rule-based driver (tracker terms)")
        terms = {name: value for name, value in decision.terms.items() if not name.startswith("k_")}
        y = 38
        for name, value in terms.items():
            text(image, name.replace("_rad", "").replace("_m", " m").replace("_", " "), 8, y + 10, TEXT, 0.38)
            hbar(image, 130, y, w - 130 - 70, 10, value / 0.5, ACCENT if name == "steer_rad" else COMMAND, centred=True)
            text(image, f"{value:+.3f}", w - 64, y + 10, DIM, 0.38)
            y += 20
    else:
        panel_frame(image, f"decision: {decision.kind} agent")
        y = 38
    if chosen.dtype.kind in "iu" and action.size == 1:  # a discrete action: its name, not an axis
        index = int(action[0])
        text(image, f"action {labels[index] if index < len(labels) else index} (#{index})", 8, min(y + 16, h - 8), ACCENT, NORMAL)
        return
    for i, value in enumerate(action):
        label = labels[i] if i < len(labels) else f"a{i}"
        text(image, f"action {label}: {value:+.3f}", 8, min(y + 16 + 18 * i, h - 8), ACCENT, NORMAL)
