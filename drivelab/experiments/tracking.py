"""Experiment tracking: each trial is a Weights & Biases run (offline unless an account is set up),
with TensorBoard logs beside it, both inside the trial's run directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WANDB_ID_FILE = "wandb_run_id.txt"
# Where stable-baselines3 writes a trial's TensorBoard events: learn(tb_log_name="train",
# reset_num_timesteps=False) keeps to train_0 across resumes. W&B syncs it with this as its root, so
# the curves keep SB3's own names (train/value_loss, ...).
TENSORBOARD_LOG_NAME = "train"
TENSORBOARD_EVENTS_DIR = f"tensorboard/{TENSORBOARD_LOG_NAME}_0"
VIDEO_KEY = "eval/video"  # evaluation videos (evaluation.video_every_steps), at the env steps they were filmed


def resolve_wandb_mode(mode: str) -> str:
    """``auto`` → ``online`` when an API key is configured, else ``offline``; ``WANDB_MODE`` wins over ``auto``."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE") in ("online", "offline", "disabled"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path.home() / ".netrc"
    try:
        if netrc.is_file() and "api.wandb.ai" in netrc.read_text():
            return "online"
    except OSError:  # unreadable netrc: no account to use
        pass
    return "offline"


def _new_run_id() -> str:
    """Eight lowercase letters and digits, the shape W&B gives its own run ids."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


class WandbRun:
    """A trial's W&B run; resumes the same run id when the trial resumes."""

    def __init__(self, trial: dict[str, Any], run_dir: Path) -> None:
        self.mode = resolve_wandb_mode(trial["tracking"]["wandb"]["mode"])
        self.run = None
        if self.mode == "disabled":
            return
        import wandb

        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else _new_run_id()
        id_file.write_text(run_id)
        settings = wandb.Settings(console="off", quiet=True, silent=True, x_disable_stats=True, disable_git=True,
                                  save_code=False)
        self._patched_tensorboard = False
        if trial["tracking"]["tensorboard"]:
            # TensorBoard is synced through W&B's patch with the trial's log root, as W&B asks of a process
            # that writes several event directories (a sweep worker runs trial after trial). The patch
            # of an earlier trial in this process is replaced, and removed when this run finishes.
            if wandb.patched["tensorboard"]:
                wandb.tensorboard.unpatch()
            wandb.tensorboard.patch(root_logdir=str(run_dir / TENSORBOARD_EVENTS_DIR))
            self._patched_tensorboard = True
        self.run = wandb.init(
            project=trial["tracking"]["wandb"]["project"],
            entity=trial["tracking"]["wandb"]["entity"],
            group=trial["experiment"],
            job_type=trial["agent"],
            name=f"{trial['agent']}-seed{trial['seed']}",
            tags=sorted({trial["agent"], trial["algo"], trial["env_id"], f"seed-{trial['seed']}"}),
            config=trial,
            dir=str(run_dir),
            id=run_id,
            resume="allow",
            mode=self.mode,
            sync_tensorboard=False,  # patched above, with the log root
            reinit="finish_previous",
            settings=settings,
        )
        self.run.define_metric("global_step")
        self.run.define_metric("eval/*", step_metric="global_step")

    @property
    def active(self) -> bool:
        return self.run is not None

    def sb3_callback(self):
        """W&B's own stable-baselines3 integration (hyperparameters, model graph)."""
        from wandb.integration.sb3 import WandbCallback

        return WandbCallback(verbose=0, gradient_save_freq=0, log=None)

    def log_evaluation(self, env_steps: int, summary: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log({"global_step": env_steps, **{f"eval/{key}": value for key, value in summary.items()}})

    def log_video(self, env_steps: int, path: Path, caption: str) -> None:
        """An evaluation video (mp4), under ``eval/video`` at ``env_steps``: W&B copies it into the run's
        ``files/media/videos/`` and the history row refers to that copy."""
        if self.run is not None:
            import wandb

            self.run.log({"global_step": env_steps, VIDEO_KEY: wandb.Video(str(path), caption=caption, format="mp4")})

    def log_model(self, model_path: Path, name: str, metadata: dict[str, Any]) -> None:
        if self.run is None:
            return
        import wandb

        artifact = wandb.Artifact(name=name, type="model", metadata=metadata)
        artifact.add_file(str(model_path))
        self.run.log_artifact(artifact)

    def finish(self, summary: dict[str, Any] | None = None, exit_code: int = 0) -> None:
        if self.run is None:
            return
        if summary:
            self.run.summary.update(summary)
        self.run.finish(exit_code=exit_code)
        self.run = None
        if self._patched_tensorboard:
            import wandb

            wandb.tensorboard.unpatch()
            self._patched_tensorboard = False
