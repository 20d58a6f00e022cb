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

# Heights of the visual layers (m). Only looks: the car rolls on the collision plane at z = 0. The
# markings lie at z = 0, where the camera model of drivelab.envs.camera draws them (tests/envs/test_camera.py
# compares its markings with PyBullet's pixel by pixel), the asphalt 2 cm below them, the grass 3 cm below
# that. Layers 1-2 mm apart fought in the GUI's depth buffer: grass streaked through the road a car's length
# from the camera and hid all of it further away (Mesa's llvmpipe under Xvfb; tests/envs/test_gui.py).
GRASS_TOP_Z_M = -0.05
ASPHALT_Z_M = -0.02
MARKING_Z_M = 0.0
# Centimetres were not enough under the GUI's ground box: OpenGL's depth across its 4 km triangles is too
# coarse, and grass still streaked through the road 80 m away. So in the GUI nothing green lies under the
# road: the box lies 2 m down, out of reach of that error, and grass verges run beside the road at the
# grass's height, GUI_VERGE_M wide or 1.5 road half-widths if less (an inner verge wider than the road
# would fold back across it in the tightest bend a track may have, of radius 2 half-widths). The box, the
# same green, fills the rest to the horizon without a visible step. PyBullet's camera images (TinyRenderer,
# on the CPU) draw the road cleanly over the box, so headless worlds keep it at the grass's height and
# build no verges.
GUI_GROUND_Z_M = -2.0
GUI_VERGE_M = 4.0


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


SOFTWARE_RENDERER_NICE = 10


def deprioritise_software_rendering() -> None:
    """Give Mesa's software-rendering threads in this process (``llvmpipe-N``) a lower scheduling priority.

    Without a GPU (a server, Xvfb) Mesa draws the PyBullet GUI on the CPU, one such thread per core, and the
    GUI redraws without pause: the threads took the CPU from the env's own stepping, whose steps then
    stalled a scheduler slice at a time. On 2 cores with other work running, a tenth of the decision steps
    took 0.1 s instead of 0.6 ms and a paced 10 s episode ended up to 1.4 s late; at nice 10 the steps
    stayed under 0.1 s and on schedule, and the GUI draws with the CPU left over. Linux only (per-thread
    priorities), best effort; with a GPU there are no such threads and nothing changes.
    """
    tasks = f"/proc/{os.getpid()}/task"
    try:
        threads = os.listdir(tasks)
    except OSError:  # no /proc: not Linux
        return
    for thread in threads:
        try:
            with open(f"{tasks}/{thread}/comm") as comm:
                if not comm.read().startswith("llvmpipe"):
                    continue
            tid = int(thread)
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), SOFTWARE_RENDERER_NICE))
        except (OSError, ValueError):  # the thread ended, or the system refuses: the GUI works as it did
            continue


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
        if gui:
            self._configure_gui()
        self.clear()

    def _configure_gui(self) -> None:
        """The GUI shows the scene alone, without its side panels (Explorer, Params) and the previews of
        synthetic camera images, which covered a third of the window and show nothing LaneKeep uses; and
        without shadows, whose map speckled the 4 km ground with moiré streaks (shadow acne) while the
        car's own shadow did not show from the chase camera, and whose extra render pass slowed every
        frame of a software renderer (Mesa's llvmpipe, under Xvfb)."""
        c, p = self.client, self._p
        for flag in (p.COV_ENABLE_GUI, p.COV_ENABLE_RGB_BUFFER_PREVIEW, p.COV_ENABLE_DEPTH_BUFFER_PREVIEW,
                     p.COV_ENABLE_SEGMENTATION_MARK_PREVIEW, p.COV_ENABLE_SHADOWS):
            c.configureDebugVisualizer(flag, 0)
        deprioritise_software_rendering()

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
                                    visualFramePosition=[0, 0, (GUI_GROUND_Z_M if self.gui else GRASS_TOP_Z_M) - 0.001])
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
        self._add_strip(road, -edge, edge, ASPHALT_Z_M, ASPHALT)
        marking_half_width = 0.075
        for lane_edge in (-road.half_width_m, road.half_width_m):
            self._add_strip(road, lane_edge - marking_half_width, lane_edge + marking_half_width, MARKING_Z_M, MARKING)
        for lane in range(1, road.lane_count):
            d = -road.half_width_m + lane * road.lane_width_m
            self._add_strip(road, d - marking_half_width, d + marking_half_width, MARKING_Z_M, MARKING, dash_m=3.0)
        if self.gui:
            # Grass verges beside the road, over the GUI's ground box far below (see GUI_GROUND_Z_M).
            verge = min(GUI_VERGE_M, 1.5 * edge)
            for d_right, d_left in ((edge, edge + verge), (-edge - verge, -edge)):
                self._add_strip(road, d_right, d_left, GRASS_TOP_Z_M, GRASS, lit_from_above=True)
            self.client.configureDebugVisualizer(self._p.COV_ENABLE_RENDERING, 1)
        self._road_visuals_built = True

    def _add_strip(self, road: Road, d_right: float, d_left: float, z: float, color, dash_m: float | None = None,
                   lit_from_above: bool = False) -> None:
        """A flat band between two lateral offsets along the whole road, as triangle meshes.

        :param lit_from_above: give the mesh upward normals, so the GUI lights it as it lights the ground
            box's top (without, it draws meshes darker: the road's colours are as they have always been).
        """
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
            normals = {"normals": [[0.0, 0.0, 1.0]] * len(vertices)} if lit_from_above else {}
            shape = c.createVisualShape(p.GEOM_MESH, vertices=vertices, indices=indices, rgbaColor=color, **normals)
            c.createMultiBody(0, -1, shape)

    def add_vehicle(self, spec: VehicleSpec = VehicleSpec(), **pose) -> Vehicle:
        vehicle = Vehicle(self.client, spec, **pose)
        self.vehicles.append(vehicle)
        return vehicle

    def step_physics(self) -> None:
        """Advance the physics by one fixed time step."""
        self._step()
        self.physics_steps += 1

    def step_physics_for(self, steps: int) -> None:
        """Advance the physics by ``steps`` fixed time steps."""
        for _ in range(steps):
            self._step()
        self.physics_steps += steps

    def collisions(self, vehicle: Vehicle) -> list[int]:
        """Bodies other than the ground that ``vehicle`` touches."""
        contacts = self.client.getContactPoints(bodyA=vehicle.body_id)
        return sorted({contact[2] for contact in contacts if contact[2] != self.ground_id})

    def close(self) -> None:
        self.client.disconnect()  # a second close is a no-op, as gymnasium allows
