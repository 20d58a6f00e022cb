"""A virtual X server (Xvfb) for the tests of windows: PyBullet's GUI and the live dashboard.

Screenshots come from Xvfb itself: started with ``-fbdir DIR``, it keeps its screen in
``DIR/Xvfb_screen0`` as an XWD image, which :func:`read_xwd` reads with numpy, so no screenshot tool is
needed. Without Xvfb the tests that use :func:`display` skip (``make test`` installs it when it can:
Debian's package ``xvfb``).
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

SCREEN = (1280, 800)


def read_xwd(path: Path) -> np.ndarray:
    """An XWD image (as Xvfb's -fbdir keeps its screen) as ``uint8`` RGB, row 0 at the top.

    The header is 25 32-bit fields, big-endian as xwd writes them (either order is accepted); the
    pixels (32 bits each here, in the header's byte order) follow the header and its colour map.
    """
    data = path.read_bytes()
    for order in (">", "<"):
        fields = struct.unpack(order + "25I", data[:100])
        header_size, version = fields[0], fields[1]
        if version == 7 and 100 <= header_size < len(data):
            break
    else:
        raise ValueError(f"{path} is not an XWD image")
    width, height, byte_order, bits_per_pixel, bytes_per_line = fields[4], fields[5], fields[7], fields[11], fields[12]
    red_mask, green_mask, blue_mask, ncolors = fields[14], fields[15], fields[16], fields[19]
    if bits_per_pixel != 32:
        raise ValueError(f"{path}: {bits_per_pixel} bits per pixel; start Xvfb with a 24-bit screen")
    offset = header_size + 12 * ncolors  # each colour map entry is 12 bytes
    pixels = np.frombuffer(data, dtype="<u4" if byte_order == 0 else ">u4", count=height * bytes_per_line // 4, offset=offset)
    pixels = pixels.reshape(height, bytes_per_line // 4)[:, :width]

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((pixels & mask) >> shift).astype(np.uint8)

    return np.dstack([channel(red_mask), channel(green_mask), channel(blue_mask)])


class Display:
    def __init__(self, name: str, fbdir: Path) -> None:
        self.name, self.screen_file = name, fbdir / "Xvfb_screen0"
        self.env = {**os.environ, "DISPLAY": name}

    def screenshot(self) -> np.ndarray:
        return read_xwd(self.screen_file)


@contextlib.contextmanager
def virtual_display(fbdir: Path):
    """A virtual X server on a free display (Xvfb picks it: -displayfd), with its screen readable as a file
    in ``fbdir``; the calling test skips when Xvfb is not installed."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian/Ubuntu package xvfb; `make test` installs it when run as root)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                               "-fbdir", str(fbdir), "-nolisten", "tcp", "-noreset"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_end)
    try:
        number = b""
        deadline = time.monotonic() + 20
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([read_end], [], [], 0.5)[0]:
                chunk = os.read(read_end, 16)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit() or not (fbdir / "Xvfb_screen0").exists():
            server.kill()
            pytest.fail(f"Xvfb did not start: {server.stderr.read().decode(errors='replace')[-500:]}")
        yield Display(f":{int(number)}", fbdir)
    finally:
        os.close(read_end)
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
