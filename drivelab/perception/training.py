"""Training the perception CNN on a collected dataset, resumable after a kill.

A training run directory holds::

    checkpoint.pt      after every epoch (written to a temporary file, then renamed): weights,
                       optimiser, AMP scaler, epoch, random-number states, the options it was started with
    model.pt           the final weights (state dict)           } written at the end, the description
    perception.json    architecture, targets, training summary  } last: its presence means "done"

The same call again resumes from the last finished epoch; with the same options the result is the
one an uninterrupted run gives (bit for bit on the CPU). A larger ``epochs`` continues a finished run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from drivelab.perception.dataset import Dataset, load_dataset, read_manifest, remove_stale_temporaries
from drivelab.perception.evaluation import mean_absolute_errors
from drivelab.perception.model import (METADATA_FILE, MODEL_FILE, PerceptionCNN, estimated_features, predict_images, resolve_device,
                                       save_model, torch_save_atomic)

CHECKPOINT_FILE = "checkpoint.pt"
JITTER_BRIGHTNESS = 0.3  # image gain in 1 ± this
JITTER_TINT = 0.1  # extra gain per colour channel in 1 ± this
JITTER_OFFSET = 0.05  # added to each channel (images in [0, 1])
# The learning rate warms up linearly over this fraction of the run (Adam's first steps, with
# BatchNorm's statistics still settling, are the unstable ones), then follows a cosine to zero.
WARMUP_FRACTION = 0.03
WEIGHT_DECAY = 1e-4
# The whole dataset moves to the GPU when it is smaller than this: no host-to-device copy per batch.
MAX_DATASET_ON_GPU_BYTES = 4 << 30


IDENTITY_WORDS = {"outputs": "estimated features", "image_shape": "image size", "train_dataset": "training data",
                  "heldout_dataset": "held-out data"}


class TrainingInterrupted(Exception):
    """Training stopped on request; the last finished epoch is checkpointed."""


@dataclass(frozen=True)
class TrainingOptions:
    """The options that define a training run; resuming requires the same ones (``epochs`` may grow)."""

    batch_size: int = 128  # images per optimiser step
    lr: float = 2e-3  # peak learning rate of the warm-up-then-cosine schedule (AdamW)
    seed: int = 0  # weights' initialisation, shuffling and augmentation
    # Mirror half the images, negating every estimate: right only for a mirror-symmetric scene and a centred camera.
    flip: bool = False
    jitter: bool = True  # random brightness and colour per image: estimates do not depend on them, so it is always right

    def check(self) -> None:
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"learning rate must be a positive number, got {self.lr!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")


def _dataset_fingerprint(path: str | os.PathLike) -> str:
    """The manifest's digest: the same dataset wherever it is moved, a different one after a re-collection."""
    manifest = read_manifest(path)
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def _learning_rate(step: int, total_steps: int, peak: float) -> float:
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return peak * 0.5 * (1.0 + math.cos(math.pi * progress))


def _check_pair(train: Dataset, heldout: Dataset | None) -> tuple[str, ...]:
    outputs = estimated_features(train.features)
    if not outputs:
        raise ValueError(f"dataset {train.path} has none of the features the camera CNN estimates "
                         f"(lateral_offset_m, heading_error_rad, curvature_*); it has {', '.join(train.features)}")
    if len(train) == 0:
        raise ValueError(f"dataset {train.path} holds no samples")
    if heldout is not None:
        if heldout.image_shape != train.image_shape:
            raise ValueError(f"held-out images are {heldout.image_shape[0]}x{heldout.image_shape[1]}, training images "
                             f"{train.image_shape[0]}x{train.image_shape[1]}: collect both with the same camera")
        missing = [name for name in outputs if name not in heldout.features]
        if missing:
            raise ValueError(f"held-out dataset {heldout.path} lacks {', '.join(missing)}")
        if len(heldout) == 0:
            raise ValueError(f"held-out dataset {heldout.path} holds no samples")
    return outputs


def load_training_data(data_dir: str | os.PathLike, heldout_dir: str | os.PathLike | None = None
                       ) -> tuple[Dataset, Dataset | None, tuple[str, ...]]:
    """The training and held-out datasets, checked to fit each other, and the features to estimate.

    One-line ``ValueError`` for anything wrong, before anything is written anywhere.
    """
    train = load_dataset(data_dir)
    heldout = load_dataset(heldout_dir) if heldout_dir is not None else None
    return train, heldout, _check_pair(train, heldout)


def _heldout_metrics(model: PerceptionCNN, heldout: Dataset, outputs: tuple[str, ...], device: torch.device) -> dict[str, Any]:
    model.eval()
    estimates = predict_images(model, heldout.images, device)
    model.train()
    truth = heldout.columns(outputs)
    std = model.target_std.cpu().numpy()
    loss = float(np.mean(((estimates - truth) / std) ** 2))  # the training loss's units: standardised MSE
    return {"heldout_loss": loss, "heldout_mae": mean_absolute_errors(estimates, truth, outputs)}


def train_perception(data_dir: str | os.PathLike, out_dir: str | os.PathLike, *, epochs: int = 10, device: str = "auto",
                     heldout_dir: str | os.PathLike | None = None, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                     flip: bool = False, jitter: bool = True, log: Callable[[dict[str, float], int], None] | None = None,
                     progress: bool = True, should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Train the perception CNN; returns the training summary that ``perception.json`` keeps.

    :param data_dir: the training dataset.
    :param out_dir: the run directory (made if missing; a checkpoint in it is resumed).
    :param epochs: passes over the training set.
    :param device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``; mixed precision on CUDA.
    :param heldout_dir: a dataset from other tracks, evaluated after every epoch.
    :param batch_size: images per step. :param lr: peak learning rate. :param seed: initialisation and shuffling.
    :param flip: mirror-image augmentation; :param jitter: brightness and colour augmentation (see :class:`TrainingOptions`).
    :param log: called after every epoch with flat metrics (``train/loss``, ``heldout/loss``,
        ``heldout/mae/<feature>``, ``lr``, ``epoch``) and the epoch number as the step.
    :param progress: a tqdm bar per epoch on stderr.
    :param should_stop: polled between batches; when it answers true, training stops with
        :class:`TrainingInterrupted`, the last finished epoch kept in the checkpoint.
    :raises ValueError: (one line) bad options or datasets, or a run directory that holds another
        training; nothing is written then.
    """
    if not (isinstance(epochs, int) and epochs >= 1):
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}")
    options = TrainingOptions(batch_size=batch_size, lr=lr, seed=seed, flip=flip, jitter=jitter)
    options.check()
    torch_device = resolve_device(device)
    train, heldout, outputs = load_training_data(data_dir, heldout_dir)
    run_dir = Path(out_dir)
    identity = {
        "options": asdict(options),
        "outputs": list(outputs),
        "image_shape": list(train.image_shape),
        "train_dataset": _dataset_fingerprint(data_dir),
        "heldout_dataset": _dataset_fingerprint(heldout_dir) if heldout_dir is not None else None,
    }
    checkpoint = _read_checkpoint(run_dir, identity)
    if checkpoint is not None and checkpoint["epoch"] >= epochs and (run_dir / METADATA_FILE).is_file():
        done = json.loads((run_dir / METADATA_FILE).read_text())["training"]
        return {**done, "already_done": True}
    if checkpoint is None and (run_dir / METADATA_FILE).exists():
        raise ValueError(f"{run_dir} holds a trained perception model without a checkpoint to continue from; "
                         f"choose another output directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT_FILE, MODEL_FILE, METADATA_FILE):
        remove_stale_temporaries(run_dir, name)

    torch.manual_seed(seed)
    model = PerceptionCNN(train.image_shape, len(outputs))
    train_targets = train.columns(outputs)
    model.set_target_statistics(train_targets.mean(axis=0), train_targets.std(axis=0))
    model.to(torch_device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    use_amp = torch_device.type == "cuda"
    if use_amp:
        torch.backends.cudnn.benchmark = True  # fixed image size: let cuDNN pick its fastest kernels (CPU runs stay deterministic)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    shuffle = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    first_epoch, wall_time_s = 0, 0.0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if use_amp and checkpoint["scaler"]:  # empty when the run started on the CPU (no AMP there)
            scaler.load_state_dict(checkpoint["scaler"])
        shuffle.set_state(checkpoint["rng"]["shuffle"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        first_epoch, wall_time_s = int(checkpoint["epoch"]), float(checkpoint["wall_time_s"])
        history = json.loads(checkpoint["history"])

    images = torch.from_numpy(train.images)
    targets = torch.from_numpy(train_targets).to(torch_device)
    if torch_device.type == "cuda" and images.numel() < MAX_DATASET_ON_GPU_BYTES:
        images = images.to(torch_device)
    samples = len(train)
    batches_per_epoch = math.ceil(samples / batch_size)
    total_steps = epochs * batches_per_epoch
    loss_function = nn.MSELoss()
    from tqdm import tqdm

    model.train()
    for epoch in range(first_epoch, epochs):
        started = time.perf_counter()
        order = torch.randperm(samples, generator=shuffle)
        mirror = torch.rand(samples, generator=shuffle) < 0.5 if flip else None
        colour = _colour_jitter(samples, shuffle) if jitter else None
        loss_sum = torch.zeros((), device=torch_device)
        bar = tqdm(total=batches_per_epoch, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", file=sys.stderr,
                   disable=not progress, leave=False, dynamic_ncols=True)
        try:
            for batch in range(batches_per_epoch):
                if should_stop is not None and should_stop():
                    raise TrainingInterrupted(f"stopped in epoch {epoch + 1}; {epoch} epoch(s) kept in {run_dir / CHECKPOINT_FILE}")
                index = order[batch * batch_size:(batch + 1) * batch_size]
                batch_images = images[index.to(images.device)].to(torch_device, non_blocking=True)
                batch_targets = targets[index.to(torch_device)]
                if mirror is not None:
                    batch_images, batch_targets = mirror_samples(batch_images, batch_targets, mirror[index].to(torch_device))
                for group in optimizer.param_groups:
                    group["lr"] = _learning_rate(epoch * batches_per_epoch + batch, total_steps, lr)
                inputs = model.preprocess(batch_images)
                if colour is not None:
                    gain, offset = (part[index].to(torch_device) for part in colour)
                    inputs = (inputs * gain + offset).clamp_(0.0, 1.0)
                with torch.autocast(device_type=torch_device.type, dtype=torch.float16, enabled=use_amp):
                    loss = loss_function(model.head(model.backbone(inputs)).float(), model.standardise(batch_targets))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                loss_sum += loss.detach() * index.shape[0]
                if batch % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                bar.update(1)
        finally:
            bar.close()
        train_loss = float(loss_sum) / samples
        seconds = time.perf_counter() - started
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss, "seconds": seconds,
                                  "images_per_s": samples / seconds, "lr": optimizer.param_groups[0]["lr"]}
        if heldout is not None:
            record.update(_heldout_metrics(model, heldout, outputs, torch_device))
        wall_time_s += time.perf_counter() - started
        history.append(record)
        torch_save_atomic({
            "identity": json.dumps(identity, sort_keys=True),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "epoch": epoch + 1, "wall_time_s": wall_time_s, "history": json.dumps(history),
            "rng": {"shuffle": shuffle.get_state(), "torch": torch.get_rng_state()},
        }, run_dir / CHECKPOINT_FILE)
        if log is not None:
            log(_flat_metrics(record), epoch + 1)

    final = history[-1]
    summary = {
        "train_dataset": str(data_dir), "train_samples": samples,
        "heldout_dataset": str(heldout_dir) if heldout_dir is not None else None,
        "heldout_samples": len(heldout) if heldout is not None else 0,
        "epochs": epochs, "wall_time_s": wall_time_s, "device": torch_device.type, "mixed_precision": use_amp,
        **asdict(options),
        "train_loss": final["train_loss"],
        "heldout_loss": final.get("heldout_loss"),
        "heldout_mae": final.get("heldout_mae"),
        "train_images_per_s": float(np.median([record["images_per_s"] for record in history])),
        "history": history,
    }
    model.eval()
    save_model(run_dir, model, outputs, summary)
    return summary


def _colour_jitter(samples: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: a gain per colour channel (brightness × tint) and an offset, each N×3×1×1.

    Ranges like a camera's exposure and white balance, and like the scene randomisation of
    :func:`drivelab.envs.camera.random_palette`, so a model trained on one look generalises to others.
    """
    brightness = torch.empty(samples, 1, 1, 1).uniform_(1 - JITTER_BRIGHTNESS, 1 + JITTER_BRIGHTNESS, generator=generator)
    tint = torch.empty(samples, 3, 1, 1).uniform_(1 - JITTER_TINT, 1 + JITTER_TINT, generator=generator)
    offset = torch.empty(samples, 3, 1, 1).uniform_(-JITTER_OFFSET, JITTER_OFFSET, generator=generator)
    return brightness * tint, offset


def mirror_samples(images: torch.Tensor, targets: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror the images (N×H×W×3) left to right where ``which`` is true, and negate their targets.

    A mirrored road is a road seen by a car at the opposite offset and heading error, on a bend
    the other way: each estimated feature (offset, heading error, curvature; all left positive)
    changes sign. This holds for a mirror-symmetric scene seen by a camera on the car's centre line.
    """
    mirrored = torch.where(which[:, None, None, None], images.flip(2), images)
    sign = 1.0 - 2.0 * which.to(targets.dtype)[:, None]
    return mirrored, targets * sign


def _flat_metrics(record: dict[str, Any]) -> dict[str, float]:
    metrics = {"epoch": record["epoch"], "train/loss": record["train_loss"], "train/images_per_s": record["images_per_s"],
               "lr": record["lr"]}
    if "heldout_loss" in record:
        metrics["heldout/loss"] = record["heldout_loss"]
        metrics.update({f"heldout/mae/{name}": value for name, value in record["heldout_mae"].items()})
    return metrics


def _read_checkpoint(run_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        # On the CPU whatever the device: the generator states must stay there, and load_state_dict moves the rest.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        stored = json.loads(checkpoint["identity"])
        int(checkpoint["epoch"])
    except Exception as error:  # a torn or foreign file: unpickling raises whatever its bytes decode to
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a readable perception checkpoint ({first}); remove it to start over") from None
    if stored != identity:
        if stored.get("options") != identity["options"]:
            detail = ", ".join(f"{key} {stored['options'].get(key)!r} (now {value!r})"
                               for key, value in identity["options"].items() if stored["options"].get(key) != value)
        else:
            detail = next(IDENTITY_WORDS[key] for key in identity if stored.get(key) != identity[key])
        raise ValueError(f"{run_dir} holds a training with other {detail}; give the same options to resume it, "
                         f"or another output directory")
    return checkpoint
