"""The perception CNN: a camera image in, the camera-visible part of the driving state out.

The network estimates the lateral offset, the heading error and the curvature preview
(:func:`estimated_features`); speed, yaw rate and steering angle come from the car's own sensors.
It is a backbone (image → ``features_dim`` vector) and a head (vector → standardised estimates), so
that the backbone can serve pixel agents as a stable-baselines3 features extractor, initialised from
a trained perception model or not.

A trained model is a run directory holding::

    model.pt           the state dict (torch.save), nothing else: loads with weights_only=True
    perception.json    architecture and its arguments, image shape, feature names, target means and
                       standard deviations, training summary

Why this architecture: measured on 2 CPU cores with 84×84 images in batches of 128, four stride-2
convolutions (5×5 then 3×3; 16, 32, 64, 64 channels) with BatchNorm train at about 2,000 images/s
and infer at about 8,000, against 2,200 and 5,800 for the Nature-DQN CNN, with 0.69 M weights
instead of 1.7 M; twice the channels (32, 64, 64, 64) halved both speeds for about the same held-out
error after equal epochs. Unlike the Nature CNN's 8×8 stride-4 first layer, it also fits small images (tests use 32×32).
Ten epochs of 34,000 images from the hood camera (about 3.5 minutes on those cores) gave held-out
mean absolute errors of 0.015 m lateral offset and 0.35° heading error.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

MODEL_FILE = "model.pt"
METADATA_FILE = "perception.json"
ARCHITECTURE = "drivelab-perception-cnn/1"
DEFAULT_CHANNELS = (16, 32, 64, 64)
DEFAULT_FEATURES_DIM = 256
DEFAULT_HEAD_HIDDEN = 128
# A feature that never varies in the training set (a dataset of straight roads has no curvature) gets
# this standard deviation instead of zero, so standardising does not divide by zero.
MIN_TARGET_STD = 1e-6
# The estimates: what a camera sees of the road. The car's own sensors give the rest of the state.
CAMERA_FEATURES = ("lateral_offset_m", "heading_error_rad")
CAMERA_FEATURE_PREFIXES = ("curvature_",)


class PerceptionModelError(ValueError):
    """A perception run directory that cannot be loaded; the message is one line."""


def estimated_features(features: Sequence[str]) -> tuple[str, ...]:
    """The features of a state vector that the camera CNN estimates, in the vector's order."""
    return tuple(name for name in features if name in CAMERA_FEATURES or name.startswith(CAMERA_FEATURE_PREFIXES))


def _conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class PerceptionBackbone(nn.Module):
    """Image → ``features_dim`` features: strided convolutions, BatchNorm, ReLU, then one linear layer.

    Input: float images, N×3×H×W in [0, 1], which is what stable-baselines3 hands a features extractor
    (channel-first, divided by 255), so this module can become one unchanged. (Its BatchNorm layers
    are fine there too: stable-baselines3 switches a policy to eval mode to act and back to train mode
    to learn.)

    :param image_shape: ``(H, W, 3)``.
    :param channels: output channels of each stride-2 convolution (each halves the image).
    :param features_dim: size of the output vector.
    """

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = DEFAULT_CHANNELS,
                 features_dim: int = DEFAULT_FEATURES_DIM) -> None:
        super().__init__()
        height, width, depth = (int(v) for v in image_shape)
        layers: list[nn.Module] = []
        previous = depth
        for index, count in enumerate(channels):
            # A wider first kernel sees a lane marking's both edges at once on a full-size image.
            kernel = 5 if index == 0 else 3
            padding = kernel // 2
            layers += [nn.Conv2d(previous, count, kernel, stride=2, padding=padding, bias=False),
                       nn.BatchNorm2d(count), nn.ReLU(inplace=True)]
            height, width = _conv_output_size(height, kernel, 2, padding), _conv_output_size(width, kernel, 2, padding)
            previous = count
        if height < 1 or width < 1:
            raise ValueError(f"images of {image_shape[0]}x{image_shape[1]} are too small for {len(channels)} stride-2 layers")
        # Channels-last weights: the images arrive H×W×C, and oneDNN's convolutions are faster in that layout
        # (measured: +10 % training, +10 % inference on 2 CPU cores); results are the same.
        self.convolutions = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        # Flattening (not pooling) keeps where on the image things are: the lane's position *is* the answer.
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(previous * height * width, features_dim), nn.ReLU(inplace=True))
        self.image_shape = tuple(int(v) for v in image_shape)
        self.features_dim = int(features_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.convolutions(images))


class PerceptionHead(nn.Module):
    """Features → standardised estimates: a small MLP."""

    def __init__(self, features_dim: int, outputs: int, hidden: int = DEFAULT_HEAD_HIDDEN) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(features_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class PerceptionCNN(nn.Module):
    """The perception model: :class:`PerceptionBackbone` and :class:`PerceptionHead`.

    ``forward`` takes camera images as they come (uint8, N×H×W×3) and returns the estimates
    standardised with the training set's target statistics (what the loss compares);
    :meth:`to_physical` turns them into physical units. The statistics are buffers, so they travel in
    the state dict with the weights.

    :param image_shape: ``(H, W, 3)`` of the camera images.
    :param outputs: number of estimated features.
    """

    def __init__(self, image_shape: Sequence[int], outputs: int, channels: Sequence[int] = DEFAULT_CHANNELS,
                 features_dim: int = DEFAULT_FEATURES_DIM, head_hidden: int = DEFAULT_HEAD_HIDDEN) -> None:
        super().__init__()
        shape = tuple(int(v) for v in image_shape)
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"image_shape must be (height, width, 3), got {tuple(image_shape)!r}")
        if outputs < 1:
            raise ValueError(f"outputs must be >= 1, got {outputs}")
        self.image_shape = shape
        self.outputs = int(outputs)
        self.architecture_args = {"channels": [int(c) for c in channels], "features_dim": int(features_dim),
                                  "head_hidden": int(head_hidden)}
        self.backbone = PerceptionBackbone(shape, channels, features_dim)
        self.features_dim = self.backbone.features_dim
        self.head = PerceptionHead(self.features_dim, outputs, head_hidden)
        self.register_buffer("target_mean", torch.zeros(outputs))
        self.register_buffer("target_std", torch.ones(outputs))

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """uint8 N×H×W×3 → float N×3×H×W in [0, 1] (the backbone's input)."""
        return images.permute(0, 3, 1, 2).float().div_(255.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.preprocess(images)))

    def set_target_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.target_mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.target_std.copy_(torch.as_tensor(np.maximum(np.asarray(std, dtype=np.float32), MIN_TARGET_STD)))

    def standardise(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.target_mean) / self.target_std

    def to_physical(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs * self.target_std + self.target_mean


def build_model(metadata: dict[str, Any]) -> PerceptionCNN:
    """An untrained model of the architecture ``metadata`` (a perception.json) describes."""
    args = metadata["architecture"]["args"]
    return PerceptionCNN(metadata["image_shape"], len(metadata["outputs"]), channels=args["channels"],
                         features_dim=args["features_dim"], head_hidden=args["head_hidden"])


def model_metadata(model: PerceptionCNN, outputs: Sequence[str], training: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``perception.json`` holds about a model (``training`` adds its training summary)."""
    return {
        "architecture": {"name": ARCHITECTURE, "args": dict(model.architecture_args)},
        "image_shape": list(model.image_shape),
        "outputs": list(outputs),
        "target_mean": [float(v) for v in model.target_mean.tolist()],
        "target_std": [float(v) for v in model.target_std.tolist()],
        "training": training or {},
    }


def torch_save_atomic(value: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill mid-write leaves the previous file whole."""
    from drivelab.perception.dataset import write_stream_atomic

    write_stream_atomic(path, lambda stream: torch.save(value, stream))


def save_model(run_dir: str | os.PathLike, model: PerceptionCNN, outputs: Sequence[str],
               training: dict[str, Any] | None = None) -> Path:
    """Write ``model.pt``, then ``perception.json`` (each atomically): a reader never finds a description without its weights."""
    from drivelab.perception.dataset import write_json_atomic

    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    torch_save_atomic(model.state_dict(), root / MODEL_FILE)
    write_json_atomic(root / METADATA_FILE, model_metadata(model, outputs, training))
    return root


def save_untrained_model(run_dir: str | os.PathLike, image_shape: Sequence[int] = (84, 84, 3),
                         outputs: Sequence[str] | None = None, seed: int = 0) -> Path:
    """A model with its initial weights, saved as a trained one is: for inference benchmarks and for
    tests of code that loads models. ``outputs`` default to what the CNN estimates of
    ``DriveLab/LaneKeep-v0``'s default ``"state"`` observation."""
    if outputs is None:
        from drivelab.envs.lanekeep import LaneKeepOptions
        from drivelab.envs.observations import StateObservation

        preview_m = LaneKeepOptions().curvature_preview_m
        outputs = estimated_features(StateObservation(max_steer_rad=1.0, curvature_preview_m=preview_m).feature_names)
    torch.manual_seed(seed)
    model = PerceptionCNN(image_shape, len(outputs)).eval()
    return save_model(run_dir, model, outputs, {"untrained": True})


def _shape_text(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def read_metadata(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The checked ``perception.json`` of a run directory; :class:`PerceptionModelError` for anything wrong."""
    root = Path(run_dir)
    if not root.is_dir():
        raise PerceptionModelError(f"perception model directory {root} does not exist" if not root.exists()
                                   else f"perception model {root} is not a directory")
    path = root / METADATA_FILE
    if not path.is_file():
        raise PerceptionModelError(f"{root} holds no trained perception model: {METADATA_FILE} is missing")
    try:
        metadata = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PerceptionModelError(f"{path} is not readable JSON: {str(error).splitlines()[0]}") from None
    try:
        architecture = metadata["architecture"]
        if architecture["name"] != ARCHITECTURE:
            raise PerceptionModelError(f"{path}: architecture {architecture['name']!r} is not {ARCHITECTURE!r}")
        args = architecture["args"]
        valid = (all(isinstance(c, int) and c > 0 for c in args["channels"]) and isinstance(args["features_dim"], int)
                 and isinstance(args["head_hidden"], int) and len(metadata["image_shape"]) == 3
                 and all(isinstance(v, int) and v > 0 for v in metadata["image_shape"])
                 and all(isinstance(name, str) for name in metadata["outputs"]) and len(metadata["outputs"]) >= 1)
    except (KeyError, TypeError) as error:
        raise PerceptionModelError(f"{path} is not a perception model description (missing or wrong {error})") from None
    if not valid:
        raise PerceptionModelError(f"{path} is not a perception model description (bad architecture, image_shape or outputs)")
    return metadata


def load_perception_model(run_dir: str | os.PathLike, device: str | torch.device = "cpu",
                          image_shape: Sequence[int] | None = None) -> tuple[PerceptionCNN, dict[str, Any]]:
    """The trained model of a run directory, in eval mode on ``device``, and its ``perception.json``.

    :param image_shape: the camera's ``(H, W, 3)``, when known: a model made for another size is refused.
    :raises PerceptionModelError: (one line) a missing directory or file, a file that is not a torch
        state dict of this architecture, or an image-size mismatch.
    """
    root = Path(run_dir)
    metadata = read_metadata(root)
    expected = tuple(metadata["image_shape"])
    if image_shape is not None and tuple(int(v) for v in image_shape) != expected:
        raise PerceptionModelError(f"perception model {root} expects {_shape_text(expected)} images, "
                                   f"the camera gives {_shape_text(tuple(image_shape))}")
    weights = root / MODEL_FILE
    if not weights.is_file():
        raise PerceptionModelError(f"{root} holds no trained perception model: {MODEL_FILE} is missing")
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, AttributeError) as error:
        # weights_only=True turns a file carrying code (a pickle of objects) into an error here as well.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PerceptionModelError(f"{weights} is not a readable torch state dict ({first})") from None
    except Exception as error:  # unpickling raises whatever the bytes happen to decode to
        raise PerceptionModelError(f"{weights} is not a readable torch state dict ({type(error).__name__})") from None
    try:
        model = build_model(metadata)
    except ValueError as error:
        raise PerceptionModelError(f"{root / METADATA_FILE}: {str(error).splitlines()[0]}") from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise PerceptionModelError(f"{weights} is not a state dict of tensors")
    expected_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found_shapes = {key: tuple(value.shape) for key, value in state.items()}
    missing = sorted(set(expected_shapes) - set(found_shapes))
    unexpected = sorted(set(found_shapes) - set(expected_shapes))
    wrong = sorted(key for key in set(expected_shapes) & set(found_shapes) if expected_shapes[key] != found_shapes[key])
    if missing or unexpected or wrong:
        detail = (f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}" if unexpected
                  else f"{wrong[0]} is {found_shapes[wrong[0]]}, expected {expected_shapes[wrong[0]]}")
        raise PerceptionModelError(f"{weights} does not match the architecture in {METADATA_FILE} ({detail})")
    model.load_state_dict(state)
    model.to(device)
    model.eval()
    return model, metadata


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else the CPU; ``cuda`` without CUDA is a one-line ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for, but no CUDA device is available here; use auto or cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    return torch.device(device)


class Perceiver:
    """A trained perception model ready to estimate: images in, physical units out.

    :param run_dir: the perception run directory.
    :param device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    :param image_shape: the camera's ``(H, W, 3)``, checked against the model's.
    :param batch_size: images per forward pass (bounds the memory a large call needs); default: :func:`inference_batch_size`.
    """

    def __init__(self, run_dir: str | os.PathLike, device: str = "auto", image_shape: Sequence[int] | None = None,
                 batch_size: int | None = None) -> None:
        try:
            self.device = resolve_device(device)
        except ValueError as error:
            raise PerceptionModelError(str(error)) from None
        self.model, self.metadata = load_perception_model(run_dir, self.device, image_shape)
        self.outputs: tuple[str, ...] = tuple(self.metadata["outputs"])
        self.image_shape: tuple[int, int, int] = tuple(self.metadata["image_shape"])  # type: ignore[assignment]
        self.batch_size = int(batch_size) if batch_size is not None else inference_batch_size(self.device)

    def estimate(self, images: np.ndarray) -> np.ndarray:
        """Estimates in physical units: float32 N×len(outputs) for uint8 images N×H×W×3, or len(outputs) for one H×W×3 image."""
        images = np.asarray(images)
        single = images.ndim == 3
        batch = images[None] if single else images
        if batch.dtype != np.uint8 or batch.shape[1:] != self.image_shape:
            raise ValueError(f"images must be uint8 of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {batch.dtype} {images.shape}")
        results = predict_images(self.model, batch, self.device, self.batch_size)
        return results[0] if single else results


def inference_batch_size(device: str | torch.device) -> int:
    """Images per forward pass for inference: 128 on the CPU, where batches of 512 ran at half the speed
    (their activations outgrow the caches; measured on 2 cores, 84×84), 1024 on a GPU."""
    return 1024 if torch.device(device).type == "cuda" else 128


def predict_images(model: PerceptionCNN, images: np.ndarray, device: str | torch.device,
                   batch_size: int | None = None) -> np.ndarray:
    """Physical-unit estimates (float32, N×outputs) for uint8 images N×H×W×3, batch by batch; ``model`` in eval mode."""
    batch_size = batch_size or inference_batch_size(device)
    results = np.empty((images.shape[0], model.outputs), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
            results[start:start + chunk.shape[0]] = model.to_physical(model(chunk)).float().cpu().numpy()
    return results


def count_parameters(module: nn.Module) -> int:
    return int(sum(math.prod(p.shape) for p in module.parameters()))
