"""``observation="perceived"``: the ``"state"`` vector, with what a camera can see estimated by the CNN.

The perception model estimates the lateral offset, the heading error and the curvature ahead from the
camera image; speed, yaw rate and steering angle come from the car's own sensors (wheel speeds, a gyro,
the steering angle sensor), as on a real car. The vector has the same features, bounds and scales as
``"state"``, so a policy or a driver made for ``"state"`` runs on it unchanged.

The mode keeps the last estimate beside the truth (``last_estimate``, ``last_truth``) and running
absolute errors per feature (``absolute_errors``), for ``drivelab drive`` and the viewer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from drivelab.envs.observations import DrivingState, StateObservation


class PerceivedObservation(StateObservation):
    """``Box(float32)`` like ``"state"``; the camera-visible features come from the perception model.

    :param perception_model: the run directory of a model made by ``drivelab perception train``.
    :param camera_shape: ``(height, width)`` of the env's camera, checked against the model's.
    :param perception_device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    """

    name = "perceived"
    needs_camera = True

    def __init__(self, *, max_steer_rad: float, curvature_preview_m: Sequence[float], camera_shape: tuple[int, int],
                 perception_model: str | None = None, perception_device: str = "auto", **_: Any) -> None:
        super().__init__(max_steer_rad=max_steer_rad, curvature_preview_m=curvature_preview_m)
        if perception_model is None:
            raise ValueError("observation='perceived' needs option perception_model=RUN_DIR (a model from "
                             "`drivelab perception train`)")
        from drivelab.perception.model import Perceiver

        height, width = camera_shape
        self.perceiver = Perceiver(perception_model, device=perception_device, image_shape=(height, width, 3))
        names = self.feature_names
        unknown = [name for name in self.perceiver.outputs if name not in names]
        if unknown:
            raise ValueError(f"perception model {perception_model} estimates {unknown[0]!r}, which observation "
                             f"'state' does not have (its features: {', '.join(names)})")
        self.estimated_indices = np.array([names.index(name) for name in self.perceiver.outputs])
        self.last_estimate: np.ndarray | None = None
        self.last_truth: np.ndarray | None = None
        # Deferred (set by BatchedPerception): observe() hands back the truth and keeps (truth, image) here,
        # for one batched forward pass over many envs instead of one per env.
        self.deferred = False
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.reset_errors()

    def reset_errors(self) -> None:
        """Start the running absolute errors afresh (e.g. per episode)."""
        self.absolute_errors = np.zeros(len(self.estimated_indices))
        self.estimates = 0

    def mean_absolute_errors(self) -> dict[str, float]:
        """Mean absolute error of each estimated feature since :meth:`reset_errors`, in its own units."""
        count = max(self.estimates, 1)
        return {name: float(error / count) for name, error in zip(self.perceiver.outputs, self.absolute_errors)}

    def observe(self, state: DrivingState, image: np.ndarray | None = None) -> np.ndarray:
        truth = super().observe(state)
        if self.deferred:
            self.pending.append((truth, image))
            return truth
        return self.complete(truth[None], self.perceiver.estimate(image)[None])[0]

    def complete(self, truths: np.ndarray, estimates: np.ndarray) -> np.ndarray:
        """The perceived vectors for ``"state"`` vectors ``truths`` (N×F) and the CNN's ``estimates`` (N×outputs):
        the estimates in their places, clipped to the bounds; the errors are counted."""
        vectors = np.array(truths, dtype=np.float32, copy=True)
        vectors[:, self.estimated_indices] = estimates
        np.minimum(np.maximum(vectors, self._low, out=vectors), self._high, out=vectors)
        self.last_truth, self.last_estimate = truths[-1], vectors[-1]
        self.absolute_errors += np.abs(vectors[:, self.estimated_indices] - truths[:, self.estimated_indices]).sum(axis=0)
        self.estimates += len(vectors)
        return vectors
