"""Read an offline W&B run's transaction log (``run-<id>.wandb``) back, for tests.

The file is W&B's record log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB
blocks of records, each with a 7-byte header (CRC32, little-endian length, type: 1 full,
2 first, 3 middle, 4 last) and a piece of a serialised ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    assert data[: len(HEADER)] == HEADER, "not a W&B transaction log"
    position, pieces = len(HEADER), []
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER:  # the writer pads the end of a block with zeros
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + RECORD_HEADER])
        if length == 0 and kind == 0:
            position += left_in_block
            continue
        body = data[position + RECORD_HEADER:position + RECORD_HEADER + length]
        position += RECORD_HEADER + length
        if kind == FULL:
            yield body
        elif kind == FIRST:
            pieces = [body]
        elif kind == MIDDLE:
            pieces.append(body)
        elif kind == LAST:
            pieces.append(body)
            yield b"".join(pieces)


def _history_row(items) -> dict[str, Any]:
    """One history row; a logged media object (``wandb.Video``, say) comes as one item per field, with the
    key path ``[key, field]``, and is put back together: ``{"eval/video": {"_type": "video-file", "path": ...}}``."""
    row: dict[str, Any] = {}
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        target = row
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = json.loads(item.value_json)
    return row


def read_run(run_file: Path) -> dict[str, Any]:
    """History rows, config, summary, run attributes, saved files (``files``), artifacts and exit code of one
    offline run. The files themselves are in the run's ``files/`` folder, beside the ``.wandb`` log."""
    from wandb.proto import wandb_internal_pb2 as pb

    result: dict[str, Any] = {"history": [], "config": {}, "summary": {}, "run": None, "artifacts": [], "files": [],
                              "exit_code": None}
    for payload in _payloads(Path(run_file).read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            result["history"].append(_history_row(record.history.item))
        elif kind == "run":
            run = record.run
            result["run"] = {"id": run.run_id, "group": run.run_group, "job_type": run.job_type,
                             "tags": list(run.tags), "project": run.project, "name": run.display_name}
            for item in run.config.update:
                result["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                result["config"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                result["summary"][item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "files":  # files saved with the run, media included (paths relative to the run's files/)
            result["files"] += [item.path for item in record.files.files]
        elif kind == "artifact":
            result["artifacts"].append({"name": record.artifact.name, "type": record.artifact.type})
        elif kind == "exit":
            result["exit_code"] = record.exit.exit_code
    return result


def offline_runs(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))
