"""``drivelab perception train`` and ``eval`` through a parser built with ``add_perception_commands``, as the
``drivelab`` parser will hold them: results on stdout, bad input in one line with exit status 2, nothing left behind."""

from __future__ import annotations

import json
import re
import shutil
import sys

import pytest
import torch

from drivelab.cli.common import EXIT_USAGE, Parser, UsageError
from drivelab.cli.perception import add_perception_commands
from drivelab.perception.model import METADATA_FILE, MODEL_FILE
from tests.experiments.wandb_records import offline_runs, read_run


def drivelab(argv: list[str]) -> int:
    """What ``drivelab.cli.main`` does, with a parser holding only the perception group."""
    parser = Parser(prog="drivelab")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    add_perception_commands(commands)
    try:
        args = parser.parse_args(argv)
        return args.handler(args)
    except UsageError as error:
        message = str(error)
        print(message if message.startswith("drivelab") else f"drivelab: {message}", file=sys.stderr)
        return EXIT_USAGE


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_train_tracks_in_the_run_directory_and_eval_prints_the_errors(road_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    status = drivelab(["perception", "train", "--data", str(road_data["train"]), "--heldout", str(road_data["heldout"]),
                       "--out", str(run_dir), "--epochs", "2", "--batch-size", "64", "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert report["model"] == str(run_dir / MODEL_FILE) and report["epochs"] == 2 and report["device"] == "cpu"
    assert set(report["heldout_mae"]) >= {"lateral_offset_m", "heading_error_deg"}
    assert (run_dir / MODEL_FILE).is_file() and (run_dir / METADATA_FILE).is_file()
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    runs = offline_runs(run_dir)
    assert len(runs) == 1
    record = read_run(runs[0])
    heldout_rows = [row for row in record["history"] if "heldout/loss" in row]
    assert len(heldout_rows) == 2  # one per epoch, through TensorBoard's sync
    assert record["config"]["batch_size"] == 64 and record["config"]["epochs"] == 2
    assert record["summary"]["final/heldout_loss"] == pytest.approx(report["heldout_loss"])
    assert record["exit_code"] == 0

    assert drivelab(["perception", "eval", str(run_dir), "--data", str(road_data["heldout"]), "--device", "cpu", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == 256
    assert result["mae"]["lateral_offset_m"] == pytest.approx(report["heldout_mae"]["lateral_offset_m"], rel=1e-4)
    assert "heading_error_deg" in result["mae"] and result["images_per_s"] > 0

    assert drivelab(["perception", "eval", str(run_dir), "--data", str(road_data["heldout"]), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"perception model {run_dir} on {road_data['heldout']} (heldout, 256 images")
    assert lines[1].split() == ["feature", "mean", "abs", "error"]
    assert [line.split()[0] for line in lines[2:]] == list(result["mae"])


def test_train_prints_where_the_model_is(road_data, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert drivelab(["perception", "train", "--data", str(road_data["train"]), "--out", str(run_dir), "--epochs", "1",
                     "--device", "cpu", "--wandb", "disabled"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trained 1 epoch on 768 images")
    assert out.strip().splitlines()[-1] == f"model: {run_dir / MODEL_FILE} (described in {run_dir / METADATA_FILE})"
    assert not (run_dir / "wandb").exists()


@pytest.fixture()
def corrupt_dataset(road_data, tmp_path):
    copy = tmp_path / "corrupt"
    shutil.copytree(road_data["train"], copy)
    (copy / "shard-00001.npz").write_bytes(b"PK\x03\x04 not a shard")
    return copy


@pytest.mark.parametrize("arguments, message", [
    (lambda data, tmp: ["--data", str(tmp / "nowhere")], "dataset directory .*nowhere does not exist"),
    (lambda data, tmp: ["--data", str(tmp / "corrupt")], "shard-00001.npz is not readable"),
    (lambda data, tmp: ["--data", str(data["train"]), "--heldout", str(data["small_images"])],
     "held-out images are 24x24, training images 32x32"),
    (lambda data, tmp: ["--data", str(data["train"]), "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (lambda data, tmp: ["--data", str(data["train"]), "--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
    (lambda data, tmp: ["--data", str(data["train"]), "--device", "cuda"], "no CUDA device is available"),
])
def test_train_refuses_bad_input_in_one_line_and_writes_nothing(road_data, corrupt_dataset, tmp_path, capsys, arguments, message):
    if "CUDA" in message and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "out"
    assert drivelab(["perception", "train", *arguments(road_data, tmp_path), "--out", str(out)]) == EXIT_USAGE
    line = one_line_error(capsys)
    assert line.startswith("drivelab") and re.search(message, line), line
    assert not out.exists()


def test_eval_refuses_bad_input_in_one_line(trained_run, road_data, tmp_path, capsys):
    run_dir = trained_run[0]
    assert drivelab(["perception", "eval", str(tmp_path / "nowhere"), "--data", str(road_data["heldout"])]) == EXIT_USAGE
    assert "perception model directory" in one_line_error(capsys)
    assert drivelab(["perception", "eval", str(run_dir), "--data", str(road_data["small_images"]), "--device", "cpu"]) == EXIT_USAGE
    assert one_line_error(capsys).endswith(f"expects 32x32 images, dataset {road_data['small_images']} holds 24x24")
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / MODEL_FILE).write_bytes(b"not torch")
    assert drivelab(["perception", "eval", str(broken), "--data", str(road_data["heldout"]), "--device", "cpu"]) == EXIT_USAGE
    assert "model.pt is not a readable torch state dict" in one_line_error(capsys)
    assert drivelab(["perception", "eval", str(run_dir), "--data", str(tmp_path / "nodata"), "--device", "cpu"]) == EXIT_USAGE
    assert "nodata does not exist" in one_line_error(capsys)
