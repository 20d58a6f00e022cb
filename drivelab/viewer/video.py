"""Where dashboard frames go: a video file (mp4 through ffmpeg, or gif) or a live OpenCV window.

A video is written to a temporary file beside its destination and renamed into place when it is
complete, so an error or a Ctrl-C never leaves a partial video under the name asked for.
ffmpeg comes from imageio-ffmpeg's wheel: there is no system ffmpeg to install.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".gif")
WINDOW_TITLE = "DriveLab watch"
SYSTEM_FONTS = "/usr/share/fonts"


def check_video_path(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` that a video can be written to, or a one-line ``ValueError``."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"cannot write video {str(path)!r}: unknown extension {path.suffix or '(none)'!r}; "
                         f"allowed: {', '.join(VIDEO_SUFFIXES)}")
    if path.is_dir():
        raise ValueError(f"cannot write video {str(path)!r}: it is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"cannot write video {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"cannot write video {str(path)!r}: permission denied")
    return path


class VideoFile:
    """Frames appended one at a time to an mp4 (H.264) or gif at ``fps``; in place only after :meth:`close`.

    :param path: the destination, checked by :func:`check_video_path`.
    :param fps: frames per second (the env's decision rate plays the rollout at real time).
    """

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        import imageio.v2 as imageio

        self.path = check_video_path(path)
        self.fps = float(fps)
        suffix = self.path.suffix.lower()
        self.temporary = self.path.with_name(f".{self.path.stem}.partial-{os.getpid()}{suffix}")
        if suffix == ".mp4":
            # yuv420p plays everywhere (browsers, W&B, phones); macro_block_size 2: even sizes are kept as they are.
            self._writer = imageio.get_writer(self.temporary, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                              quality=7, pixelformat="yuv420p", macro_block_size=2,
                                              ffmpeg_log_level="error")
        else:
            self._writer = imageio.get_writer(self.temporary, mode="I", duration=1000.0 / self.fps, loop=0)
        self.frames = 0
        self._open = True

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        if self._open:
            self._open = False
            try:
                self._writer.close()
            except BaseException:
                self.temporary.unlink(missing_ok=True)
                raise
            os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial file: nothing is left under either name."""
        if self._open:
            self._open = False
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - ffmpeg may already be gone (Ctrl-C reaches it too)
                pass
        self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> "VideoFile":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def check_display() -> None:
    """A one-line ``ValueError`` when there is no screen for a window."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError("--live needs a display, and DISPLAY is not set; write a video with --out FILE.mp4 instead "
                         "(or run under Xvfb)")


class WindowClosed(Exception):
    """The user closed the live window: the rollout stops there."""


class LiveWindow:
    """The dashboard in an OpenCV window. Any key closes it when it waits on an episode card."""

    def __init__(self, title: str = WINDOW_TITLE) -> None:
        check_display()
        if sys.platform.startswith("linux") and os.path.isdir(SYSTEM_FONTS):
            # OpenCV's Qt ships no fonts and says so on stderr, several lines at every start, unless pointed at some.
            os.environ.setdefault("QT_QPA_FONTDIR", SYSTEM_FONTS)
        import cv2

        self.title = title
        try:
            # GUI_NORMAL: the dashboard alone, without Qt's toolbar and status bar.
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error:
            raise ValueError("--live needs OpenCV's window support, which this OpenCV build lacks "
                             "(opencv-python-headless?): pip install opencv-python") from None
        self._shown = False

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        """Show an RGB frame; returns the key pressed within ``wait_ms`` (-1 for none)."""
        import cv2

        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            raise WindowClosed()
        cv2.imshow(self.title, np.ascontiguousarray(frame[..., ::-1]))  # OpenCV shows BGR
        self._shown = True
        return cv2.waitKey(max(1, int(wait_ms)))

    def wait_for_key(self) -> None:
        """Keep the last frame on screen until a key is pressed or the window is closed."""
        import cv2

        while cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1:
            if cv2.waitKey(100) != -1:
                return

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:  # already gone
            pass
