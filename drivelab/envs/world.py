"""The PyBullet driving world: ground, road surface and markings, and any number of vehicles.

The physics runs at a fixed time step (``physics_hz``); environments decide at a lower rate and call
:meth:`World.step_physics` between decisions. Everything that happens in the world goes through
one ``BulletClient``, so several worlds can live in one process (one per vectorised env).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from dataclasses import dataclass

import numpy as np

from drivelab.envs.vehicle import Vehicle, VehicleSpec
from drivelab.planning import Road

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class PhysicsSettings:
    """Bullet solver settings.

    Why 100 Hz: Bullet's tyre grip in a bend depends on the time step. On LaneKeep track 811504
    (curvature up to 0.032 1/m at 10 m/s) the rule-based driver's lateral error RMS is 0.039 m at
    100 Hz and 0.043 m at 240 Hz, but 0.070 m at 80 Hz and 0.24 m at 60 Hz, where the front tyres
    slide (tests/envs/test_physics_rate.py keeps 100 Hz honest against 240 Hz). Ten solver
    iterations keep the four contacts steady at rest and under full braking.
    """

    physics_hz: float = 100.0
    solver_iterations: int = 10
    ground_friction: float = 1.0


# Colours a camera will see (RGBA).
ASPHALT = (0.25, 0.25, 0.27, 1.0)
GRASS = (0.30, 0.55, 0.25, 1.0)
MARKING = (0.95, 0.95, 0.95, 1.0)
CENTRE_MARKING = (0.95, 0.8, 0.1, 1.0)


@contextlib.contextmanager
def quiet_c_output(*descriptors: int):
    """Silence what PyBullet's C code prints on the given file descriptors (default: stdout).

    On stdout it prints "argv[0]=" when it connects, written to file descriptor 1 directly, which
    would corrupt ``--json`` output; on stderr, its "pybullet build time" banner when imported, once
    per process (so once per sweep worker), which is noise in every command's output.
    """
    descriptors = descriptors or (1,)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in descriptors]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in descriptors:
                os.dup2(devnull.fileno(), fd)
            try:
                yield
            finally:
                _flush_c_stdio()
    finally:
        for fd, copy in zip(descriptors, saved):
            os.dup2(copy, fd)
            os.close(copy)


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers, so text PyBullet buffered goes where fd 1 points now."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (not Linux/macOS): nothing was buffered there
        pass


@functools.cache
def import_pybullet():
    """pybullet, imported with its build banner silenced."""
    with quiet_c_output(1, 2):
        import pybullet
    return pybullet


class Bullet:
    """One PyBullet connection; its attributes are pybullet's functions bound to it.

    Like ``pybullet_utils.bullet_client.BulletClient``, but the bound function is made once and
    cached instead of on every call: the world calls PyBullet several times per physics step.
    """

    def __init__(self, gui: bool = False) -> None:
        if gui and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # PyBullet would end the whole process ("cannot connect to X server") instead of raising.
            raise ValueError("render_mode='human' opens the PyBullet GUI and needs a display, but DISPLAY is not set; "
                             "use render_mode='rgb_array' (or run under Xvfb)")
        p = import_pybullet()
        self._p = p
        with quiet_c_output():
            self.id = p.connect(p.GUI if gui else p.DIRECT)

    def __getattr__(self, name: str):
        attribute = getattr(self._p, name)
        if inspect.isbuiltin(attribute):
            attribute = functools.partial(attribute, physicsClientId=self.id)
        self.__dict__[name] = attribute
        return attribute

    def disconnect(self) -> None:
        if self.id >= 0:
            self._p.disconnect(physicsClientId=self.id)
            self.id = -1


class World:
    """A PyBullet scene holding one road and its vehicles.

    :param settings: physics time step and solver settings.
    :param gui: open the PyBullet GUI instead of the headless DIRECT mode.
    """

    def __init__(self, settings: PhysicsSettings = PhysicsSettings(), *, gui: bool = False) -> None:
        self._p = import_pybullet()
        self.settings = settings
        self.gui = gui
        self.client = Bullet(gui)
        self._step = self.client.stepSimulation
        self.vehicles: list[Vehicle] = []
        self.road: Road | None = None
        self._road_visuals_built = False
        self.physics_steps = 0
        self.snapshot = None
        self._camera_renderer: int | None = None
        self.clear()

    @property
    def dt_s(self) -> float:
        return 1.0 / self.settings.physics_hz

    @property
    def time_s(self) -> float:
        return self.physics_steps * self.dt_s

    def clear(self) -> None:
        """Empty the world: same state, bit for bit, as a freshly connected one (determinism)."""
        c, p = self.client, self._p
        c.resetSimulation()
        if self.gui:
            c.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0)
        c.setGravity(0, 0, -GRAVITY_MPS2)
        c.setPhysicsEngineParameter(
            fixedTimeStep=self.dt_s,
            numSolverIterations=self.settings.solver_iterations,
            deterministicOverlappingPairs=1,
        )
        # The ground is an infinite collision plane (cheapest contact); the road on it is visual only,
        # since asphalt and grass share one friction here and leaving the road ends the episode.
        plane = c.createCollisionShape(p.GEOM_PLANE)
        grass = c.createVisualShape(p.GEOM_BOX, halfExtents=[2000, 2000, 0.001], rgbaColor=GRASS,
                                    visualFramePosition=[0, 0, -0.002])
        self.ground_id = c.createMultiBody(0, plane, grass)
        c.changeDynamics(self.ground_id, -1, lateralFriction=self.settings.ground_friction)
        self.vehicles = []
        self.road = None
        self._road_visuals_built = False
        self.physics_steps = 0
        self.snapshot: int | None = None

    def camera_renderer(self) -> int:
        """PyBullet's renderer for camera images: the OpenGL one through EGL where a GPU is present and the
        plugin loads, TinyRenderer (CPU) otherwise. Decided once per world."""
        if self._camera_renderer is None:
            p, renderer = self._p, None
            if os.path.exists("/dev/nvidiactl") and not self.gui:
                try:
                    import pkgutil

                    egl = pkgutil.get_loader("eglRenderer")
                    if egl is not None and self.client.loadPlugin(egl.get_filename(), "_eglRendererPlugin") >= 0:
                        renderer = p.ER_BULLET_HARDWARE_OPENGL
                except Exception:  # noqa: BLE001 - no EGL here: TinyRenderer draws the same scene
                    renderer = None
            self._camera_renderer = p.ER_TINY_RENDERER if renderer is None else renderer
        return self._camera_renderer

    def save_snapshot(self) -> None:
        """Remember the simulation as it is now (bodies, poses, velocities, contacts) for :meth:`restore_snapshot`."""
        self.snapshot = self.client.saveState()

    def restore_snapshot(self) -> bool:
        """Return the simulation to the saved snapshot, bit for bit; False when there is none to return to.

        An episode's reset in a fraction of a millisecond, where clearing the world and building the
        cars again takes milliseconds. Only valid while no body was added since the snapshot.
        """
        if self.snapshot is None:
            return False
        self.client.restoreState(self.snapshot)
        self.physics_steps = 0
        return True

    def set_road(self, road: Road) -> None:
        if road is not self.road:
            self._road_visuals_built = False
        self.road = road

    def ensure_road_visuals(self) -> None:
        """Lay the road surface and lane markings as meshes, once, when something will look at them.

        Headless training never renders, so it never pays for building them.
        """
        if self._road_visuals_built or self.road is None:
            return
        road = self.road
        edge = road.half_width_m + road.shoulder_m
        self._add_strip(road, -edge, edge, 0.001, ASPHALT)
        marking_half_width = 0.075
        for lane_edge in (-road.half_width_m, road.half_width_m):
            self._add_strip(road, lane_edge - marking_half_width, lane_edge + marking_half_width, 0.002, MARKING)
        for lane in range(1, road.lane_count):
            d = -road.half_width_m + lane * road.lane_width_m
            self._add_strip(road, d - marking_half_width, d + marking_half_width, 0.002, MARKING, dash_m=3.0)
        if self.gui:
            self.client.configureDebugVisualizer(self._p.COV_ENABLE_RENDERING, 1)
        self._road_visuals_built = True

    def _add_strip(self, road: Road, d_right: float, d_left: float, z: float, color, dash_m: float | None = None) -> None:
        """A flat band between two lateral offsets along the whole road, as triangle meshes."""
        c, p = self.client, self._p
        spacing = 1.0
        s = np.append(np.arange(0.0, road.length_m, spacing), road.length_m)
        right = road.position(s, d_right)
        left = road.position(s, d_left)
        keep = np.ones(len(s) - 1, dtype=bool)
        if dash_m is not None:
            keep = (np.floor(s[:-1] / dash_m) % 2) == 0
        chunk = 1000  # vertices per mesh stay well inside PyBullet's per-shape limit
        for start in range(0, len(s) - 1, chunk // 2):
            stop = min(start + chunk // 2, len(s) - 1)
            vertices, indices = [], []
            for i in range(start, stop):
                if not keep[i]:
                    continue
                base = len(vertices)
                for point in (right[i], left[i], right[i + 1], left[i + 1]):
                    vertices.append([float(point[0]), float(point[1]), z])
                indices += [base, base + 2, base + 1, base + 1, base + 2, base + 3]
            if not vertices:
                continue
            shape = c.createVisualShape(p.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=color)
            c.createMultiBody(0, -1, shape)

    def add_vehicle(self, spec: VehicleSpec = VehicleSpec(), **pose) -> Vehicle:
        vehicle = Vehicle(self.client, spec, **pose)
        self.vehicles.append(vehicle)
        return vehicle

    def step_physics(self) -> None:
        """Advance the physics by one fixed time step."""
        self._step()
        self.physics_steps += 1

    def collisions(self, vehicle: Vehicle) -> list[int]:
        """Bodies other than the ground that ``vehicle`` touches."""
        contacts = self.client.getContactPoints(bodyA=vehicle.body_id)
        return sorted({contact[2] for contact in contacts if contact[2] != self.ground_id})

    def close(self) -> None:
        self.client.disconnect()  # a second close is a no-op, as gymnasium allows
