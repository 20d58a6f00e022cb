"""A car-sized vehicle in PyBullet: a rigid chassis on four driven, steered, braked wheels.

Why a vehicle of our own instead of pybullet_data's racecar: the racecar URDF is a 1:10 model
(0.3 m wheelbase), so speeds and lateral errors would not mean what they mean on a real road, and
its differential made of gear constraints steps at about 1,000 env steps/s here. This car is a
reduced-coordinate multibody (Featherstone), built from primitive shapes:

- chassis: one box (4.6 × 1.8 × 0.5 m, 1,400 kg), the only body the other vehicles can hit;
- four wheels on revolute joints, front wheels behind steering knuckles (revolute about the
  vertical axis) with Ackermann geometry; steering joints are position servos with a rate limit,
  so the steering has a real actuator lag;
- the wheels' collision shapes are spheres. A sphere touches a plane in one point, exactly like a
  tyre's contact patch, and Bullet resolves sphere–plane contacts far more cheaply and more
  smoothly than cylinder–plane ones (cylinders jitter between edge contacts); a straight-line
  and a constant-steer test gave the same trajectory at physics steps of 5, 10 and 20 ms. The
  wheels still roll, slip and transmit drive, brake and cornering forces through friction at
  their contact points, so lateral dynamics (under/oversteer at the friction limit) are physical.

Drive and brake torques are joint motors: velocity motors whose force limit is the commanded
torque, so a command persists across physics sub-steps without a Python call per sub-step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class VehicleSpec:
    """Geometry, mass and actuator limits of the car (SI units)."""

    length_m: float = 4.6
    width_m: float = 1.8
    body_height_m: float = 0.5
    chassis_mass_kg: float = 1400.0
    wheel_mass_kg: float = 20.0
    knuckle_mass_kg: float = 5.0
    wheelbase_m: float = 2.7
    track_m: float = 1.55
    wheel_radius_m: float = 0.33
    wheel_width_m: float = 0.22
    tyre_friction: float = 1.0
    max_steer_rad: float = 0.5
    max_steer_rate_radps: float = 1.2
    steer_servo_force: float = 6000.0
    # Bullet's contacts let a wheel spin up at about 1,900 N of tyre force (measured: 585 N·m on a rear
    # wheel holds, 720 N·m spins it), so full throttle and full brake stay just inside that: a car
    # accelerating at 2 m/s² and braking at 5 m/s² keeps its grip, as one with traction control and ABS would.
    max_drive_torque_nm: float = 500.0  # per driven (rear) wheel
    max_brake_torque_nm: float = 600.0  # per front wheel
    # Rear brakes get this share of the front brakes' torque, as on a road car: braking moves load to the
    # front axle, and equal torques locked the unloaded rear wheels when the car braked into a bend
    # (measured: the car spun when braking from 15 m/s into a 30 m bend).
    rear_brake_ratio: float = 0.5
    max_wheel_speed_mps: float = 40.0  # drive motor's top speed, expressed at the tyre
    linear_damping: float = 0.01  # stands in for aerodynamic drag and rolling resistance


class VehicleState(NamedTuple):
    """Kinematic state of the chassis (reference point: the chassis centre).

    A named tuple: the env reads one every decision step, and it is made in a third of a frozen
    dataclass's time.
    """

    x_m: float
    y_m: float
    yaw_rad: float
    speed_mps: float  # signed, along the body's heading
    lateral_speed_mps: float  # along the body's left axis
    yaw_rate_radps: float
    roll_rad: float
    pitch_rad: float
    steer_rad: float  # mean of the two front wheels' measured angles


# Looks only (visual shapes; the collision shapes are the spec's). The spec's tyres lie wholly inside its
# 1.8 m wide body (centres at ±0.775 m, 0.22 m wide, under a body whose bottom is at the wheel centres),
# where a chase camera saw no wheel at all. So the body is drawn narrower and each tyre this far outboard
# of its joint: drawn, the tyres span ±0.765..0.985 m and the body ±0.8 m, so 85 % of each tyre's width
# shows from above and behind, and its lower half from the side.
WHEEL_VISUAL_OUTBOARD_M = 0.10
BODY_VISUAL_WIDTH_M = 1.6
TYRE = (0.08, 0.08, 0.08, 1.0)

# Joint order is the order PyBullet stores links: depth first, so a knuckle comes right before its wheel.
_FL_KNUCKLE, _FL_WHEEL, _FR_KNUCKLE, _FR_WHEEL, _RL_WHEEL, _RR_WHEEL = range(6)
STEER_JOINTS = (_FL_KNUCKLE, _FR_KNUCKLE)
FRONT_WHEELS = (_FL_WHEEL, _FR_WHEEL)
REAR_WHEELS = (_RL_WHEEL, _RR_WHEEL)
ALL_WHEELS = FRONT_WHEELS + REAR_WHEELS


class Vehicle:
    """One car in a PyBullet world; any number can share a world.

    :param client: a :class:`drivelab.envs.world.Bullet` connection.
    :param spec: geometry and actuator limits.
    :param x_m, y_m, yaw_rad: initial pose of the chassis centre on the ground.
    :param speed_mps: initial forward speed (wheels spun up to match, so no initial slip).
    :param color: RGBA of the body, for the camera and the GUI.
    """

    def __init__(
        self,
        client,
        spec: VehicleSpec = VehicleSpec(),
        *,
        x_m: float = 0.0,
        y_m: float = 0.0,
        yaw_rad: float = 0.0,
        speed_mps: float = 0.0,
        color: tuple[float, float, float, float] = (0.85, 0.15, 0.1, 1.0),
    ) -> None:
        from drivelab.envs.world import import_pybullet

        self._p = import_pybullet()
        self.client = client
        self.spec = spec
        self._steer_command_rad = 0.0
        self._servo_set = False
        self.body_id = self._build(x_m, y_m, yaw_rad, color)
        self._motor_command: tuple[float, float] | None = None  # the (throttle, brake) the wheel motors hold
        self._wheels = list(ALL_WHEELS)
        self._rear_wheels = list(REAR_WHEELS)
        self._steer_joints = list(STEER_JOINTS)
        self._steer_forces = [spec.steer_servo_force] * len(STEER_JOINTS)
        self._get_velocity = client.getBaseVelocity
        self._set_motors = client.setJointMotorControlArray
        self._release_wheels()
        self.set_speed(speed_mps, yaw_rad)

    def _build(self, x_m: float, y_m: float, yaw_rad: float, color) -> int:
        p, c, s = self._p, self.client, self.spec
        chassis_half = [s.length_m / 2, s.width_m / 2, s.body_height_m / 2]
        chassis_col = c.createCollisionShape(p.GEOM_BOX, halfExtents=chassis_half)
        wheel_col = c.createCollisionShape(p.GEOM_SPHERE, radius=s.wheel_radius_m)
        # What a camera sees differs from what collides, so that the wheels show in every view (see
        # WHEEL_VISUAL_OUTBOARD_M). Visual shapes only: masses, inertias, contacts and joint positions are
        # as specified, so the physics is the same, bit for bit, whatever the looks.
        visual_half = [chassis_half[0], BODY_VISUAL_WIDTH_M / 2, chassis_half[2]]
        chassis_vis = c.createVisualShape(p.GEOM_BOX, halfExtents=visual_half, rgbaColor=color)
        # Wheel frames are rotated so their z axis (the joint axis) points to the car's left:
        # a positive joint speed then rolls the car forward, and +z is outboard on the left side.
        wheel_vis = {  # by side: True for the left wheels (y > 0), whose outboard is +z
            left: c.createVisualShape(p.GEOM_CYLINDER, radius=s.wheel_radius_m, length=s.wheel_width_m, rgbaColor=TYRE,
                                      visualFramePosition=[0, 0, WHEEL_VISUAL_OUTBOARD_M if left else -WHEEL_VISUAL_OUTBOARD_M])
            for left in (True, False)
        }
        wheel_orn = c.getQuaternionFromEuler([-math.pi / 2, 0, 0])
        # The chassis floats half its height above the wheel centres.
        axle_z = -s.body_height_m / 2
        half_wb, half_track = s.wheelbase_m / 2, s.track_m / 2
        links = []  # (mass, collision, visual, position, orientation, parent (1-based, 0 = chassis), axis)
        for y in (half_track, -half_track):
            knuckle_parent = len(links) + 1
            links.append((s.knuckle_mass_kg, -1, -1, [half_wb, y, axle_z], [0, 0, 0, 1], 0, [0, 0, 1]))
            links.append((s.wheel_mass_kg, wheel_col, wheel_vis[y > 0], [0, 0, 0], wheel_orn, knuckle_parent, [0, 0, 1]))
        for y in (half_track, -half_track):
            links.append((s.wheel_mass_kg, wheel_col, wheel_vis[y > 0], [-half_wb, y, axle_z], wheel_orn, 0, [0, 0, 1]))
        n = len(links)
        body = c.createMultiBody(
            baseMass=s.chassis_mass_kg,
            baseCollisionShapeIndex=chassis_col,
            baseVisualShapeIndex=chassis_vis,
            basePosition=[x_m, y_m, s.wheel_radius_m - axle_z],
            baseOrientation=c.getQuaternionFromEuler([0, 0, yaw_rad]),
            linkMasses=[link[0] for link in links],
            linkCollisionShapeIndices=[link[1] for link in links],
            linkVisualShapeIndices=[link[2] for link in links],
            linkPositions=[link[3] for link in links],
            linkOrientations=[link[4] for link in links],
            linkInertialFramePositions=[[0, 0, 0]] * n,
            linkInertialFrameOrientations=[[0, 0, 0, 1]] * n,
            linkParentIndices=[link[5] for link in links],
            linkJointTypes=[p.JOINT_REVOLUTE] * n,
            linkJointAxis=[link[6] for link in links],
        )
        c.changeDynamics(body, -1, linearDamping=s.linear_damping, angularDamping=s.linear_damping)
        for wheel in ALL_WHEELS:
            c.changeDynamics(
                body, wheel, lateralFriction=s.tyre_friction, rollingFriction=0.0, spinningFriction=0.0,
                linearDamping=0.0, angularDamping=0.0,
            )
        return body

    def _release_wheels(self) -> None:
        """PyBullet starts every joint with a velocity motor holding it still; free-roll instead."""
        self.client.setJointMotorControlArray(
            self.body_id, list(ALL_WHEELS), self._p.VELOCITY_CONTROL, targetVelocities=[0.0] * 4, forces=[0.0] * 4
        )
        self.steer(0.0)

    def place(self, *, x_m: float, y_m: float, yaw_rad: float, speed_mps: float = 0.0) -> None:
        """Put the car at a pose, at rest or rolling forward, with every joint and actuator as a car
        just built there would have them (steering centred, wheels free, no motor torque)."""
        c, s = self.client, self.spec
        c.resetBasePositionAndOrientation(self.body_id, [x_m, y_m, s.wheel_radius_m + s.body_height_m / 2],
                                          c.getQuaternionFromEuler([0, 0, yaw_rad]))
        for joint in STEER_JOINTS + ALL_WHEELS:
            c.resetJointState(self.body_id, joint, 0.0, 0.0)
        self._steer_command_rad, self._servo_set, self._motor_command = 0.0, False, None
        self._release_wheels()
        self.set_speed(speed_mps, yaw_rad)

    def set_speed(self, speed_mps: float, yaw_rad: float) -> None:
        """Set the chassis moving forward at ``speed_mps`` with wheels rolling to match."""
        c = self.client
        c.resetBaseVelocity(self.body_id, [speed_mps * math.cos(yaw_rad), speed_mps * math.sin(yaw_rad), 0.0], [0, 0, 0])
        for wheel in ALL_WHEELS:
            c.resetJointState(self.body_id, wheel, 0.0, speed_mps / self.spec.wheel_radius_m)

    def ackermann_angles(self, steer_rad: float) -> tuple[float, float]:
        """Left and right wheel angles whose axles meet on the rear axle's line (Ackermann)."""
        if abs(steer_rad) < 1e-9:
            return 0.0, 0.0
        s = self.spec
        turn_radius = s.wheelbase_m / math.tan(steer_rad)  # signed, of the axle's mid point
        left = math.atan(s.wheelbase_m / (turn_radius - s.track_m / 2))
        right = math.atan(s.wheelbase_m / (turn_radius + s.track_m / 2))
        return left, right

    def steer(self, steer_rad: float) -> None:
        """Command the steering servo (clipped to ±max_steer_rad; the servo's rate is limited)."""
        s = self.spec
        steer_rad, limit = float(steer_rad), s.max_steer_rad
        if not -limit <= steer_rad <= limit:  # comparisons, not np.clip: this runs every step
            if steer_rad != steer_rad:
                raise ValueError("steer_rad must be a number, got nan")
            steer_rad = limit if steer_rad > limit else -limit
        if steer_rad == self._steer_command_rad and self._servo_set:
            return  # the servos already hold this target: setting it again changes nothing
        left, right = self.ackermann_angles(steer_rad)
        if self._servo_set:
            # The servos keep the maximum velocity set below: one call moves both targets.
            self._set_motors(self.body_id, self._steer_joints, self._p.POSITION_CONTROL, targetPositions=[left, right],
                             forces=self._steer_forces)
        else:
            # Only setJointMotorControl2 takes a maximum servo velocity (the steering rate), joint by joint.
            for joint, angle in zip(STEER_JOINTS, (left, right)):
                self.client.setJointMotorControl2(
                    self.body_id, joint, self._p.POSITION_CONTROL, targetPosition=angle,
                    force=s.steer_servo_force, maxVelocity=s.max_steer_rate_radps,
                )
        self._steer_command_rad = steer_rad
        self._servo_set = True

    def drive(self, throttle: float, brake: float) -> None:
        """Apply throttle (rear-wheel drive) and brake (all wheels), each in [0, 1].

        Brake overrides throttle on the driven wheels: with brake > 0 they are braked.
        """
        s = self.spec
        # Comparisons, not np.clip or min/max: this runs at physics rate.
        throttle, brake = float(throttle), float(brake)
        if not (0.0 <= throttle <= 1.0 and 0.0 <= brake <= 1.0):
            if throttle != throttle or brake != brake:
                raise ValueError(f"throttle and brake must be numbers in [0, 1], got {throttle} and {brake}")
            throttle = 1.0 if throttle > 1.0 else max(throttle, 0.0)
            brake = 1.0 if brake > 1.0 else max(brake, 0.0)
        command, previous = (throttle, brake), self._motor_command
        if command == previous:
            return  # the motors already hold it (full throttle while accelerating, coasting, parked)
        self._motor_command = command
        brake_torque = brake * s.max_brake_torque_nm
        if brake > 0.0:
            rear_target, rear_force = 0.0, brake_torque * s.rear_brake_ratio
        else:
            rear_target, rear_force = s.max_wheel_speed_mps / s.wheel_radius_m, throttle * s.max_drive_torque_nm
            if previous is not None and previous[1] == 0.0:
                # Driving on from driving: the front wheels' motors hold no torque either way, so only the
                # rear ones are sent (the speed loop's usual case, every physics step).
                self._set_motors(self.body_id, self._rear_wheels, self._p.VELOCITY_CONTROL,
                                 targetVelocities=[rear_target, rear_target], forces=[rear_force, rear_force])
                return
        self._set_motors(
            self.body_id,
            self._wheels,
            self._p.VELOCITY_CONTROL,
            targetVelocities=[0.0, 0.0, rear_target, rear_target],
            forces=[brake_torque, brake_torque, rear_force, rear_force],
        )

    @property
    def steer_command_rad(self) -> float:
        return self._steer_command_rad

    def forward_speed_mps(self, yaw_rad: float) -> float:
        """Chassis speed along ``yaw_rad`` (cheap: one PyBullet call, for controllers at physics rate)."""
        (vx, vy, _), _ = self._get_velocity(self.body_id)
        return vx * math.cos(yaw_rad) + vy * math.sin(yaw_rad)

    def state(self) -> VehicleState:
        c = self.client
        (x, y, _), orn = c.getBasePositionAndOrientation(self.body_id)
        roll, pitch, yaw = c.getEulerFromQuaternion(orn)
        (vx, vy, _), (_, _, yaw_rate) = self._get_velocity(self.body_id)
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        (left, *_), (right, *_) = c.getJointStates(self.body_id, STEER_JOINTS)
        # Positional: x, y, yaw, speed, lateral speed, yaw rate, roll, pitch, steer (the field order).
        return VehicleState(x, y, yaw, vx * cos_yaw + vy * sin_yaw, -vx * sin_yaw + vy * cos_yaw, yaw_rate, roll, pitch,
                            0.5 * (left + right))
