"""Perception datasets on disk: camera images with the driving state they were taken in.

A dataset is a directory::

    manifest.json        written last: a directory without it holds no dataset (yet)
    shard-00000.npz      np.savez_compressed: images, state, track_seed, s_m
    shard-00001.npz
    ...

Each shard holds ``images`` (uint8, N×H×W×3, RGB), ``state`` (float32, N×F: the ``"state"``
observation of ``DriveLab/LaneKeep-v0``, features in the manifest's order), ``track_seed`` (int64, N)
and ``s_m`` (float32, N: arc length along the track where the image was taken).

``manifest.json``::

    {"format": "drivelab-perception-dataset/1", "split": "train" | "heldout",
     "image_shape": [H, W, 3], "features": [...], "samples": total,
     "shards": [{"file": "shard-00000.npz", "samples": n}, ...],
     "collection": {...how it was collected: seed, episodes, camera options...}}

Numpy only: reading and writing a dataset needs neither torch nor the simulator.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FORMAT = "drivelab-perception-dataset/1"
MANIFEST = "manifest.json"
SPLITS = ("train", "heldout")
SHARD_ARRAYS = ("images", "state", "track_seed", "s_m")
DEFAULT_SHARD_SIZE = 2048  # 2048 images of 84×84 are ~43 MB in memory: a shard is built in RAM before it is written


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npz"


def temporary_beside(path: Path) -> tuple[int, str]:
    """A new file next to ``path`` (same file system, so it can be renamed onto ``path``), opened for writing.

    Unlike ``tempfile.mkstemp`` (mode 0600), the file gets the mode any new file gets under the umask.
    """
    while True:
        temporary = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(temporary)
        except FileExistsError:
            continue


def remove_stale_temporaries(directory: Path, pattern: str) -> None:
    """Delete what a killed writer left of its temporary files for the files named ``pattern`` (a glob)."""
    for path in directory.glob(f".{pattern}.*.tmp"):
        path.unlink(missing_ok=True)


def write_stream_atomic(path: Path, write: Any) -> int:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it into place.

    A reader (or a crash) sees the old file or the new one, never half of one. Returns the bytes written.
    """
    handle, temporary = temporary_beside(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        size = os.path.getsize(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return size


def write_json_atomic(path: Path, value: Any) -> int:
    return write_stream_atomic(Path(path), lambda stream: stream.write((json.dumps(value, indent=2) + "\n").encode()))


class DatasetWriter:
    """Writes a dataset shard by shard; the manifest comes last, so an interrupted write leaves no dataset.

    :param out_dir: the dataset directory (made if missing).
    :param split: ``"train"`` or ``"heldout"``.
    :param image_shape: ``(H, W, 3)`` of every image.
    :param features: names of the state vector's features, in order.
    :param collection: how the data was collected (seed, episodes, camera options, ...), kept in the manifest.
    :param shard_size: samples per shard.
    :param overwrite: replace a dataset already in ``out_dir``; without it, that is a ``ValueError``.

    Shards of an earlier, unfinished write (no manifest) are overwritten without asking: they belong to no dataset.
    """

    def __init__(self, out_dir: str | os.PathLike, split: str, image_shape: Sequence[int], features: Sequence[str],
                 collection: dict[str, Any], shard_size: int = DEFAULT_SHARD_SIZE, *, overwrite: bool = False) -> None:
        self.out_dir = Path(out_dir)
        if split not in SPLITS:
            raise ValueError(f"dataset split must be one of {', '.join(SPLITS)}, got {split!r}")
        shape = tuple(int(v) for v in image_shape)
        if len(shape) != 3 or shape[2] != 3 or min(shape) < 1:
            raise ValueError(f"image_shape must be (height, width, 3), got {tuple(image_shape)!r}")
        if not features or len(set(features)) != len(features):
            raise ValueError(f"features must be distinct names, got {list(features)!r}")
        if not (isinstance(shard_size, int) and shard_size >= 1):
            raise ValueError(f"shard_size must be an integer >= 1, got {shard_size!r}")
        try:
            json.dumps(collection)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the collection record must be JSON-serialisable: {error}") from None
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValueError(f"{self.out_dir} is a file, not a dataset directory")
        if (self.out_dir / MANIFEST).exists():
            if not overwrite:
                raise ValueError(f"{self.out_dir} already holds a dataset; choose another directory or overwrite it")
        self.split = split
        self.image_shape = shape
        self.features = tuple(str(name) for name in features)
        self.collection = dict(collection)
        self.shard_size = shard_size
        self.overwrite = overwrite
        self._shards: list[dict[str, Any]] = []
        self._bytes = 0
        self._samples = 0
        self._closed = False
        self._pending: dict[str, list[Any]] = {name: [] for name in SHARD_ARRAYS}
        self._started = False

    def _start(self) -> None:
        """Make the directory and drop an old manifest at the first write, not before: a writer that never
        writes leaves the directory as it was."""
        self._made_dir = not self.out_dir.exists()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.out_dir, "shard-*.npz")
        remove_stale_temporaries(self.out_dir, MANIFEST)
        if self.overwrite and (self.out_dir / MANIFEST).exists():
            # The old dataset stops being one before its shards are replaced, so no reader ever sees a
            # manifest that describes the new shards' predecessors.
            (self.out_dir / MANIFEST).unlink()
        self._started = True

    def add(self, image: np.ndarray, state_vector: np.ndarray, track_seed: int, s_m: float) -> None:
        """Append one sample; a full shard is written at once."""
        if self._closed:
            raise ValueError("this DatasetWriter is closed")
        image = np.asarray(image)
        if image.shape != self.image_shape or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 of shape {self.image_shape}, got {image.dtype} {image.shape}")
        state = np.asarray(state_vector, dtype=np.float32).reshape(-1)
        if state.shape != (len(self.features),):
            raise ValueError(f"state vector must have {len(self.features)} features ({', '.join(self.features)}), "
                             f"got {state.shape[0]}")
        if not self._started:
            self._start()
        self._pending["images"].append(image)
        self._pending["state"].append(state)
        self._pending["track_seed"].append(int(track_seed))
        self._pending["s_m"].append(float(s_m))
        if len(self._pending["images"]) >= self.shard_size:
            self._flush()

    def _flush(self) -> None:
        count = len(self._pending["images"])
        if count == 0:
            return
        arrays = {
            "images": np.stack(self._pending["images"]),
            "state": np.stack(self._pending["state"]).astype(np.float32, copy=False),
            "track_seed": np.asarray(self._pending["track_seed"], dtype=np.int64),
            "s_m": np.asarray(self._pending["s_m"], dtype=np.float32),
        }
        name = shard_name(len(self._shards))
        self._bytes += write_stream_atomic(self.out_dir / name, lambda stream: np.savez_compressed(stream, **arrays))
        self._shards.append({"file": name, "samples": count})
        self._samples += count
        self._pending = {key: [] for key in SHARD_ARRAYS}

    def close(self) -> dict[str, Any]:
        """Write the last shard and the manifest; returns ``{"samples", "shards", "bytes", "dir"}``."""
        if self._closed:
            raise ValueError("this DatasetWriter is already closed")
        if not self._started:
            self._start()
        self._flush()
        self._remove_stale_shards()
        manifest = {
            "format": FORMAT,
            "split": self.split,
            "image_shape": list(self.image_shape),
            "features": list(self.features),
            "samples": self._samples,
            "shards": self._shards,
            "collection": self.collection,
        }
        self._bytes += write_json_atomic(self.out_dir / MANIFEST, manifest)
        self._closed = True
        return {"dir": str(self.out_dir), "samples": self._samples, "shards": len(self._shards), "bytes": self._bytes}

    def abort(self) -> None:
        """Give up: remove the shards written so far, and the directory if this writer made it, so that a
        failed or interrupted collection leaves nothing half-written. No manifest was written, so no
        reader ever saw a dataset here."""
        if self._closed or not self._started:
            return
        for shard in self._shards:
            (self.out_dir / shard["file"]).unlink(missing_ok=True)
        remove_stale_temporaries(self.out_dir, "shard-*.npz")
        self._closed = True
        if self._made_dir and not any(self.out_dir.iterdir()):
            self.out_dir.rmdir()

    def _remove_stale_shards(self) -> None:
        """Shards beyond ours are left from an earlier, larger dataset or an unfinished write."""
        ours = {shard["file"] for shard in self._shards}
        for path in self.out_dir.glob("shard-*.npz"):
            if path.name not in ours:
                path.unlink()

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        # Only a clean exit writes the manifest: after an error, the shards written so far make no dataset.
        if kind is None and not self._closed:
            self.close()


@dataclass
class Dataset:
    """A dataset loaded into memory (tens of thousands of 84×84 images are a few hundred MB)."""

    path: Path
    split: str
    image_shape: tuple[int, int, int]
    features: tuple[str, ...]
    images: np.ndarray  # uint8 (N, H, W, 3)
    state: np.ndarray  # float32 (N, F)
    track_seed: np.ndarray  # int64 (N,)
    s_m: np.ndarray  # float32 (N,)
    collection: dict[str, Any]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """The state's columns ``names``, in that order (float32, N×len(names))."""
        missing = [name for name in names if name not in self.features]
        if missing:
            raise ValueError(f"dataset {self.path} has no feature {', '.join(missing)}; it has {', '.join(self.features)}")
        return self.state[:, [self.features.index(name) for name in names]]


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of the dataset in ``path``; a one-line ``ValueError`` for anything wrong."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"dataset directory {root} does not exist" if not root.exists() else f"{root} is not a directory")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{root} holds no dataset: {MANIFEST} is missing (an unfinished collection leaves none)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{manifest_path} is not readable JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{manifest_path} is not a {FORMAT} manifest (format {found!r})")
    problems = []
    shape = manifest.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape) and shape[2] == 3):
        problems.append(f"image_shape must be [height, width, 3], got {shape!r}")
    features = manifest.get("features")
    if not (isinstance(features, list) and features and all(isinstance(name, str) for name in features)):
        problems.append(f"features must be a list of names, got {features!r}")
    if manifest.get("split") not in SPLITS:
        problems.append(f"split must be one of {', '.join(SPLITS)}, got {manifest.get('split')!r}")
    shards = manifest.get("shards")
    if not (isinstance(shards, list) and all(isinstance(s, dict) and isinstance(s.get("file"), str)
                                             and isinstance(s.get("samples"), int) and s["samples"] >= 0 for s in shards)):
        problems.append("shards must be a list of {file, samples}")
    elif any(Path(s["file"]).name != s["file"] for s in shards):
        problems.append("shard files must lie in the dataset directory")
    elif manifest.get("samples") != sum(s["samples"] for s in shards):
        problems.append(f"samples ({manifest.get('samples')!r}) is not the sum of the shards' samples")
    if problems:
        raise ValueError(f"{manifest_path}: {problems[0]}")
    manifest.setdefault("collection", {})
    return manifest


def _read_shard(root: Path, shard: dict[str, Any], image_shape: tuple[int, ...], feature_count: int) -> dict[str, np.ndarray]:
    path = root / shard["file"]
    if not path.is_file():
        raise ValueError(f"dataset {root} is missing its shard {shard['file']}")
    try:
        with np.load(path, allow_pickle=False) as stored:
            missing = [name for name in SHARD_ARRAYS if name not in stored.files]
            if missing:
                raise ValueError(f"shard {path} lacks the array(s) {', '.join(missing)}")
            arrays = {name: stored[name] for name in SHARD_ARRAYS}
    except ValueError as error:
        if str(error).startswith("shard "):
            raise
        raise ValueError(f"shard {path} is not readable: {str(error).splitlines()[0]}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"shard {path} is not readable: {str(error).splitlines()[0] or type(error).__name__}") from None
    count = shard["samples"]
    expected = {"images": ((count, *image_shape), np.uint8), "state": ((count, feature_count), np.float32),
                "track_seed": ((count,), np.int64), "s_m": ((count,), np.float32)}
    for name, (shape, dtype) in expected.items():
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            raise ValueError(f"shard {path}: {name} is {arrays[name].dtype} {arrays[name].shape}, "
                             f"the manifest says {np.dtype(dtype)} {shape}")
    return arrays


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Load a whole dataset into memory; a one-line ``ValueError`` for a missing directory, a missing or
    corrupt manifest, another format, a missing or unreadable shard, or arrays of the wrong shape."""
    root = Path(path)
    manifest = read_manifest(root)
    image_shape = tuple(manifest["image_shape"])
    features = tuple(manifest["features"])
    parts = [_read_shard(root, shard, image_shape, len(features)) for shard in manifest["shards"]]

    def joined(name: str, empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate([part[name] for part in parts]) if parts else np.zeros(empty_shape, dtype=dtype)

    return Dataset(
        path=root,
        split=manifest["split"],
        image_shape=image_shape,  # type: ignore[arg-type]
        features=features,
        images=joined("images", (0, *image_shape), np.uint8),
        state=joined("state", (0, len(features)), np.float32),
        track_seed=joined("track_seed", (0,), np.int64),
        s_m=joined("s_m", (0,), np.float32),
        collection=manifest["collection"],
    )
