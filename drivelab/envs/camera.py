"""The car's camera: a fast renderer of the flat road, and PyBullet's renderer as its reference.

Why a renderer of our own: PyBullet's TinyRenderer draws an 84×84 view at a few hundred frames per
second on one core, slower than the physics it would watch. LaneKeep's world is a flat road on a flat
ground, and the image of a plane under a pinhole camera is a homography of that plane. So the road is
drawn once per track into a top-down texture (verge, asphalt, lane markings, as the PyBullet meshes
lay them), and each frame warps that texture into the camera with one ``cv2.warpPerspective``; the
sky fills what lies above the horizon, and boxes standing on the ground (the ego car seen from the
chase mount, and other vehicles once worlds hold them) are projected and filled face by face.
``tests/envs/test_camera.py`` checks that lane markings fall on the same pixels as in PyBullet's image.

Conventions: the camera frame is OpenCV's (x right, y down, z forward), pixel centres are integers
(pixel ``(0, 0)`` covers ``[-0.5, 0.5]²``), ``fov_deg`` is the vertical field of view (as in
PyBullet's ``computeProjectionMatrixFOV``), and images are ``uint8`` RGB, row 0 at the top.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from drivelab.planning import Road

CAMERA_RENDERERS = ("opencv", "pybullet")
TEXTURE_M_PER_PX = 0.05  # lane markings (0.15 m) are 3 texels wide
# A texture is at most this many texels on a side: a LaneKeep track (about 150 m across) stays at 0.05 m,
# a 2 km highway loop (about 650 m across) gets about 0.16 m a texel instead of 500 MB of texture.
TEXTURE_MAX_SIDE_PX = 4096
TEXTURE_MARGIN_M = 5.0  # verge drawn around the road's bounding box; beyond it the warp's border colour continues it
MARKING_HALF_WIDTH_M = 0.075  # as the PyBullet meshes (drivelab.envs.world)
DASH_M = 3.0
NEAR_M = 0.05
FAR_M = 300.0


@dataclass(frozen=True)
class CameraMount:
    """Where the camera sits on the car: ``forward_m`` ahead of the chassis centre, ``height_m`` above
    the ground, pitched ``pitch_deg`` down from the car's heading."""

    forward_m: float
    height_m: float
    pitch_deg: float


# "hood": just ahead of the front bumper (the body is 4.6 m long), so neither renderer sees the car itself;
# "chase": behind and above, the car in view.
CAMERA_MOUNTS = {
    "hood": CameraMount(forward_m=2.35, height_m=1.2, pitch_deg=10.0),
    "chase": CameraMount(forward_m=-6.5, height_m=3.0, pitch_deg=14.0),
}


@dataclass(frozen=True)
class Palette:
    """The colours of the scene (RGB in [0, 1]) and the image's brightness and texture noise."""

    asphalt: tuple[float, float, float] = (0.25, 0.25, 0.27)
    marking: tuple[float, float, float] = (0.95, 0.95, 0.95)
    verge: tuple[float, float, float] = (0.30, 0.55, 0.25)
    sky: tuple[float, float, float] = (0.62, 0.75, 0.90)
    body: tuple[float, float, float] = (0.85, 0.15, 0.10)
    brightness: float = 1.0
    texture_noise: float = 0.0  # standard deviation of the texture's grain, in [0, 1] colour units


@dataclass(frozen=True)
class CameraSpec:
    """Image size, field of view and mount of a camera."""

    width: int = 84
    height: int = 84
    fov_deg: float = 90.0
    mount: CameraMount = CAMERA_MOUNTS["hood"]

    def intrinsics(self) -> np.ndarray:
        """The 3×3 pinhole matrix K (square pixels, principal point at the image centre)."""
        focal = (self.height / 2) / math.tan(math.radians(self.fov_deg) / 2)
        return np.array([[focal, 0.0, (self.width - 1) / 2], [0.0, focal, (self.height - 1) / 2], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraPose:
    """The camera's position (m) and its rotation: ``rotation`` maps camera axes to world axes."""

    position: np.ndarray
    rotation: np.ndarray

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=float) - self.position) @ self.rotation


def _rotation_zyx(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Body-to-world rotation of a car with these Euler angles (PyBullet's convention: roll about x,
    then pitch about y, then yaw about z, in the world frame)."""
    cy, sy, cp, sp, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


# Camera axes (x right, y down, z forward) in the car's frame (x forward, y left, z up).
_CAMERA_IN_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def camera_pose(mount: CameraMount, x_m: float, y_m: float, yaw_rad: float, pitch_rad: float = 0.0,
                roll_rad: float = 0.0) -> CameraPose:
    """The pose of a camera on ``mount`` for a car at ``(x_m, y_m)`` with these attitudes.

    The camera rides the chassis' roll and pitch (braking dips the view) at the mount's height above
    the ground.
    """
    body = _rotation_zyx(yaw_rad, pitch_rad, roll_rad)
    rotation = body @ _mount_rotation(mount.pitch_deg)
    forward = mount.forward_m
    position = np.array([x_m + body[0, 0] * forward, y_m + body[1, 0] * forward, mount.height_m])
    return CameraPose(position=position, rotation=rotation)


@functools.lru_cache(maxsize=64)
def _mount_rotation(pitch_deg: float) -> np.ndarray:
    """Camera axes in the car's frame for a camera tilted ``pitch_deg`` down (about the car's left axis)."""
    tilt = math.radians(pitch_deg)
    c, s = math.cos(tilt), math.sin(tilt)
    tilt_about_y = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    rotation = tilt_about_y @ _CAMERA_IN_BODY
    rotation.flags.writeable = False
    return rotation


def _rgb255(color: Sequence[float], brightness: float = 1.0) -> tuple[float, float, float]:
    """A colour in [0, 1] as 0..255 floats, for OpenCV to draw into our RGB arrays (it writes channels in order)."""
    return tuple(float(np.clip(channel * brightness, 0.0, 1.0) * 255.0) for channel in color[:3])


class RoadTexture:
    """The road of one track drawn from above: verge, asphalt out to the shoulders, lane markings.

    Texel ``(i, j)`` (column, row) is the ground at ``(x0 + i·m_per_px, y0 + j·m_per_px)``.
    """

    def __init__(self, road: Road, palette: Palette = Palette(), rng: np.random.Generator | None = None,
                 m_per_px: float = TEXTURE_M_PER_PX, buffer: np.ndarray | None = None) -> None:
        import cv2

        low = road.points.min(axis=0) - TEXTURE_MARGIN_M
        high = road.points.max(axis=0) + TEXTURE_MARGIN_M
        m_per_px = self.m_per_px = max(m_per_px, float((high - low).max()) / (TEXTURE_MAX_SIDE_PX - 1))
        self.origin = low
        width, height = (np.ceil((high - low) / m_per_px)).astype(int) + 1
        self.verge_rgb = _rgb255(palette.verge, palette.brightness)
        # A texture is tens of megabytes: drawn into the previous track's memory where it fits (a view), since
        # touching fresh pages cost more than all the drawing (75 of 90 ms per track, measured).
        if buffer is None or buffer.shape[0] < height or buffer.shape[1] < width:
            buffer = np.empty((max(height, 0 if buffer is None else buffer.shape[0]),
                               max(width, 0 if buffer is None else buffer.shape[1]), 3), dtype=np.uint8)
        self.buffer = buffer
        texture = buffer[:height, :width]
        cv2.rectangle(texture, (0, 0), (width, height), self.verge_rgb, -1)  # 20× numpy's fill of a 3-channel colour
        # Sub-pixel vertices (shift bits) so edges land where the meshes put them, not on whole texels.
        shift = 4
        scale = (1 << shift) / m_per_px

        def texels(points: np.ndarray) -> np.ndarray:
            return np.round((points - low) * scale).astype(np.int32)

        spacing = 0.5
        s = np.append(np.arange(0.0, road.length_m, spacing), road.length_m)
        centre = texels(road.position(s, 0.0))
        # A thick polyline is the set of points within half its thickness of the line: exactly |d| <= half width
        # while the road's radius of curvature exceeds it (it does: 30 m against 2.25 m).
        asphalt_px = int(round(2 * road.road_half_width_m / m_per_px))
        # Without anti-aliasing (a third of the time): at 5 cm a texel, no camera pixel sees the stair.
        cv2.polylines(texture, [centre], road.closed, _rgb255(palette.asphalt, palette.brightness), asphalt_px,
                      cv2.LINE_8, shift)
        marking_px = max(1, int(round(2 * MARKING_HALF_WIDTH_M / m_per_px)))
        marking = _rgb255(palette.marking, palette.brightness)
        for lane_edge in (-road.half_width_m, road.half_width_m):
            cv2.polylines(texture, [texels(road.position(s, lane_edge))], road.closed, marking, marking_px, cv2.LINE_AA, shift)
        for lane in range(1, road.lane_count):
            d = -road.half_width_m + lane * road.lane_width_m
            starts = np.arange(0.0, road.length_m, 2 * DASH_M)
            dashes = [texels(road.position(np.linspace(a, min(a + DASH_M, road.length_m), 7), d)) for a in starts]
            cv2.polylines(texture, dashes, False, marking, marking_px, cv2.LINE_AA, shift)
        if palette.texture_noise > 0 and rng is not None:
            # A grain tile repeated over the texture: noise at texel scale without drawing millions of numbers,
            # added and subtracted with OpenCV's saturating uint8 arithmetic (no float copy of the texture).
            tile = rng.normal(0.0, palette.texture_noise * 255.0, size=(128, 128))
            lighter = np.clip(tile, 0, 255).astype(np.uint8)
            darker = np.clip(-tile, 0, 255).astype(np.uint8)
            rows, cols = height // 128 + 1, width // 128 + 1
            for grain, apply in ((lighter, cv2.add), (darker, cv2.subtract)):
                full = cv2.merge([cv2.repeat(grain, rows, cols)[:height, :width]] * 3)
                apply(texture, full, dst=texture)
        self.image = texture

    def world_from_texel(self) -> np.ndarray:
        m, (x0, y0) = self.m_per_px, self.origin
        return np.array([[m, 0.0, x0], [0.0, m, y0], [0.0, 0.0, 1.0]])


class Box3D:
    """A box on the ground for the camera to draw: centre (x, y), yaw, and size (length, width, height),
    its bottom ``bottom_m`` above the ground."""

    def __init__(self, x_m: float, y_m: float, yaw_rad: float, length_m: float, width_m: float, height_m: float,
                 bottom_m: float, color: Sequence[float]) -> None:
        c, s = math.cos(yaw_rad), math.sin(yaw_rad)
        corners = []
        for dz in (bottom_m, bottom_m + height_m):
            for dx, dy in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
                lx, ly = dx * length_m / 2, dy * width_m / 2
                corners.append((x_m + c * lx - s * ly, y_m + s * lx + c * ly, dz))
        self.corners = np.array(corners)
        self.color = color


# Faces of Box3D.corners (0-3 bottom, 4-7 top, counter-clockwise from above) with outward normals' light.
_BOX_FACES = ((4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7), (0, 3, 2, 1))


class RoadCamera:
    """Renders a car's camera view of a flat road: the texture's homography, the sky, and boxes."""

    def __init__(self, spec: CameraSpec = CameraSpec()) -> None:
        self.spec = spec
        self.K = spec.intrinsics()
        self.K_inv = np.linalg.inv(self.K)
        self.texture: RoadTexture | None = None
        self._road: Road | None = None
        self._buffer: np.ndarray | None = None
        self.set_palette(Palette())

    def set_palette(self, palette: Palette) -> None:
        self.palette = palette
        self._sky = _rgb255(palette.sky, palette.brightness)

    def set_road(self, road: Road, palette: Palette = Palette(), rng: np.random.Generator | None = None) -> None:
        """Draw ``road``'s texture in ``palette`` (``rng``: the texture's grain); kept while road and palette stay."""
        if road is self._road and palette == self.palette and rng is None and self.texture is not None:
            return
        self.set_palette(palette)
        self.texture = RoadTexture(road, palette, rng, buffer=self._buffer)
        self._buffer = self.texture.buffer
        self._road = road
        self._border = tuple(float(round(c)) for c in self.texture.verge_rgb)

    def render(self, pose: CameraPose, boxes: Sequence[Box3D] = ()) -> np.ndarray:
        import cv2

        if self.texture is None:
            raise RuntimeError("RoadCamera.render: call set_road() first")
        spec, texture = self.spec, self.texture
        world_to_camera = pose.rotation.T
        translation = -world_to_camera @ pose.position
        # Ground plane z = 0: image ~ K [r1 r2 t] (x, y, 1).
        image_from_world = self.K @ np.column_stack([world_to_camera[:, 0], world_to_camera[:, 1], translation])
        image_from_texel = image_from_world @ texture.world_from_texel()
        image = cv2.warpPerspective(texture.image, image_from_texel, (spec.width, spec.height), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=self._border)
        sky = self._sky_polygon(pose)
        if sky is not None:
            shift = 4
            cv2.fillConvexPoly(image, np.round(sky * (1 << shift)).astype(np.int32), self._sky, cv2.LINE_AA, shift)
        for box in boxes:
            self._draw_box(image, pose, box)
        return image

    def _sky_polygon(self, pose: CameraPose) -> np.ndarray | None:
        """The part of the image whose rays miss the ground within FAR_M: a half-plane of the image, clipped to it.

        A pixel (u, v) looks at height ``z(u, v) = a·u + b·v + c`` per unit of depth; it meets the
        ground within FAR_M of depth when ``z <= -camera height / FAR_M``.
        """
        a, b, c = pose.rotation[2] @ self.K_inv
        c += pose.position[2] / FAR_M
        w, h = self.spec.width - 0.5, self.spec.height - 0.5
        corners = ((-0.5, -0.5), (w, -0.5), (w, h), (-0.5, h))
        polygon = []
        for (u0, v0), (u1, v1) in zip(corners, corners[1:] + corners[:1]):  # Sutherland–Hodgman, one edge
            z0, z1 = a * u0 + b * v0 + c, a * u1 + b * v1 + c
            if z0 > 0:
                polygon.append((u0, v0))
            if (z0 > 0) != (z1 > 0):
                t = z0 / (z0 - z1)
                polygon.append((u0 + t * (u1 - u0), v0 + t * (v1 - v0)))
        return np.array(polygon) if len(polygon) >= 3 else None

    def _draw_box(self, image: np.ndarray, pose: CameraPose, box: Box3D) -> None:
        import cv2

        corners_camera = pose.world_to_camera(box.corners)
        if (corners_camera[:, 2] <= NEAR_M).any():
            return  # partly behind the camera: not drawn (the chase mount always sees its car whole)
        projected = corners_camera @ self.K.T
        pixels = projected[:, :2] / projected[:, 2:3]
        shift = 4
        faces = []
        centre = box.corners.mean(axis=0)
        for face in _BOX_FACES:
            face_centre = box.corners[list(face)].mean(axis=0)
            outward = face_centre - centre
            if np.dot(outward, face_centre - pose.position) >= 0:
                continue  # facing away from the camera
            light = 1.0 if face == _BOX_FACES[0] else 0.7  # top lit from above, sides in shade
            depth = float(np.linalg.norm(face_centre - pose.position))
            faces.append((depth, face, light))
        for _, face, light in sorted(faces, reverse=True):
            polygon = np.round(pixels[list(face)] * (1 << shift)).astype(np.int32)
            cv2.fillConvexPoly(image, polygon, _rgb255(box.color, light * self.palette.brightness), cv2.LINE_AA, shift)


def random_palette(rng: np.random.Generator) -> Palette:
    """Domain randomisation of the scene's look: road, marking and verge colours, brightness, grain."""
    grey = rng.uniform(0.15, 0.45)
    asphalt = tuple(float(np.clip(grey + rng.uniform(-0.03, 0.03), 0, 1)) for _ in range(3))
    white = rng.uniform(0.75, 1.0)
    yellow = rng.uniform(0.0, 0.25)  # from white towards yellow
    marking = (white, white, float(white * (1 - yellow)))
    verge = (rng.uniform(0.2, 0.5), rng.uniform(0.35, 0.65), rng.uniform(0.1, 0.35))
    sky_blue = rng.uniform(0.75, 1.0)
    sky = (float(sky_blue * rng.uniform(0.6, 0.9)), float(sky_blue * rng.uniform(0.75, 0.95)), float(sky_blue))
    return Palette(asphalt=asphalt, marking=marking, verge=verge, sky=sky, brightness=float(rng.uniform(0.6, 1.4)),
                   texture_noise=float(rng.uniform(0.0, 0.06)))


def random_mount(mount: CameraMount, rng: np.random.Generator) -> CameraMount:
    """The mount moved a little, per episode: height ±0.15 m, pitch ±2°."""
    return replace(mount, height_m=mount.height_m + rng.uniform(-0.15, 0.15), pitch_deg=mount.pitch_deg + rng.uniform(-2.0, 2.0))


def pybullet_camera_image(client: Any, spec: CameraSpec, pose: CameraPose, renderer: int) -> np.ndarray:
    """The same view through PyBullet's renderer (TinyRenderer, or the OpenGL/EGL one where loaded)."""
    forward = pose.rotation[:, 2]
    up = -pose.rotation[:, 1]
    eye = pose.position
    view = client.computeViewMatrix(eye.tolist(), (eye + forward).tolist(), up.tolist())
    projection = client.computeProjectionMatrixFOV(spec.fov_deg, spec.width / spec.height, NEAR_M, FAR_M)
    _, _, rgba, _, _ = client.getCameraImage(spec.width, spec.height, view, projection, renderer=renderer)
    return np.asarray(rgba, dtype=np.uint8).reshape(spec.height, spec.width, 4)[:, :, :3].copy()
