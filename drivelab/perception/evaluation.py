"""How well a perception model estimates the driving state: mean absolute error per feature, in physical units."""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np

HEADING_FEATURE = "heading_error_rad"
HEADING_DEGREES_KEY = "heading_error_deg"


def mean_absolute_errors(estimates: np.ndarray, truth: np.ndarray, outputs: tuple[str, ...] | list[str]) -> dict[str, float]:
    """MAE per feature (physical units), plus the heading error's in degrees under ``heading_error_deg``."""
    errors = np.abs(np.asarray(estimates, dtype=np.float64) - np.asarray(truth, dtype=np.float64)).mean(axis=0)
    mae = {name: float(value) for name, value in zip(outputs, errors)}
    if HEADING_FEATURE in mae:
        mae[HEADING_DEGREES_KEY] = math.degrees(mae[HEADING_FEATURE])
    return mae


def evaluate_perception(run_dir: str | os.PathLike, data_dir: str | os.PathLike, device: str = "auto",
                        batch_size: int | None = None) -> dict[str, Any]:
    """Evaluate a trained perception model on a dataset.

    :returns: ``{"run_dir", "data_dir", "split", "samples", "device", "mae": {feature: MAE, ...,
        "heading_error_deg": ...}, "images_per_s", "batch_size"}``; ``images_per_s`` times inference alone (the
        model's forward passes with the copies to and from the device), not the dataset's loading.
    :raises ValueError: (one line) a bad dataset or device; :class:`PerceptionModelError` (a
        ``ValueError``) a model that cannot be loaded or that expects another image size.
    """
    from drivelab.perception.dataset import load_dataset
    from drivelab.perception.model import (PerceptionModelError, inference_batch_size, load_perception_model, predict_images,
                                           read_metadata, resolve_device)

    torch_device = resolve_device(device)
    expected = tuple(read_metadata(run_dir)["image_shape"])  # a bad model is refused before the dataset is read
    dataset = load_dataset(data_dir)
    if dataset.image_shape != expected:
        raise PerceptionModelError(f"perception model {run_dir} expects {expected[0]}x{expected[1]} images, dataset "
                                   f"{data_dir} holds {dataset.image_shape[0]}x{dataset.image_shape[1]}")
    model, metadata = load_perception_model(run_dir, torch_device, image_shape=dataset.image_shape)
    outputs = tuple(metadata["outputs"])
    missing = [name for name in outputs if name not in dataset.features]
    if missing:
        raise ValueError(f"dataset {data_dir} has no {', '.join(missing)}, which perception model {run_dir} estimates")
    if len(dataset) == 0:
        raise ValueError(f"dataset {data_dir} holds no samples")
    truth = dataset.columns(outputs)
    batch_size = batch_size or inference_batch_size(torch_device)
    # One batch before timing: the first pass picks kernels (oneDNN's primitives, cuDNN's algorithms).
    predict_images(model, dataset.images[:batch_size], torch_device, batch_size)
    started = time.perf_counter()
    estimates = predict_images(model, dataset.images, torch_device, batch_size)
    seconds = time.perf_counter() - started
    return {
        "run_dir": str(run_dir),
        "data_dir": str(data_dir),
        "split": dataset.split,
        "samples": len(dataset),
        "device": torch_device.type,
        "mae": mean_absolute_errors(estimates, truth, outputs),
        "images_per_s": len(dataset) / seconds if seconds > 0 else float("inf"),
        "batch_size": batch_size,
    }
