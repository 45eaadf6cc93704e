"""Writing clips as mp4 files (PyAV, libx264): the one writer of the real datasets and of generated samples.

* :func:`write_mp4`: grey frames, lossless H.264 (qp=0) in yuv420p, the Moving MNIST files' format;
* :func:`write_rgb_mp4`: RGB frames with full chroma (yuv444p, qp=0), so colour is not subsampled.

Both write atomically (:func:`data.files.atomic_path`). :data:`ENCODER` is recorded in every dataset's
``dataset.json``.
"""

from __future__ import annotations

import os

import numpy as np
from einops import repeat

from data.files import atomic_path

# libx264 at qp=0 is lossless (High 4:4:4 Predictive profile). The only loss is the limited-range RGB -> YUV
# conversion (256 grey levels onto 220 luma codes), a fixed monotone map of each grey level, the same in I and P
# frames: decord returns every grey level v as g(v) with |g(v) - v| <= DECODE_TOLERANCE, equal in R, G and B.
DECODE_TOLERANCE = 1
ENCODER = {
    "format": "mp4",
    "codec": "libx264",
    "pix_fmt": "yuv420p",
    "options": {"qp": "0", "preset": "veryfast", "threads": "1"},  # qp=0: lossless; one thread: reproducible bytes
}


def _encode(path: str | os.PathLike, frames: np.ndarray, fps: int, pix_fmt: str) -> None:
    """Encode uint8 RGB frames (t h w 3) with :data:`ENCODER`'s codec and options in ``pix_fmt``, atomically."""
    import av  # imported lazily: rendering needs numpy only

    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format=ENCODER["format"]) as container:
            stream = container.add_stream(ENCODER["codec"], rate=fps, options=dict(ENCODER["options"]))
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = pix_fmt
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())  # flush


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int) -> None:
    """Write grey frames as a lossless H.264 mp4, atomically.

    The grey frames are replicated to RGB and encoded as yuv420p by libx264 at qp=0 (lossless), so every frame,
    I or P, has the same quality and decodes to the same values (within :data:`DECODE_TOLERANCE` grey levels).

    Args:
        path: destination ``.mp4`` file; its folder must exist.
        frames: uint8 array (t h w) in [0, 255], h and w even.
        fps: frames per second stored in the container.

    Raises:
        ValueError: ``frames`` is not a uint8 (t h w) array with even h and w.
    """
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"frames must be uint8 (t h w) with even h and w, got {frames.dtype} {frames.shape}")
    _encode(path, repeat(frames, "t h w -> t h w c", c=3), fps, ENCODER["pix_fmt"])


def write_rgb_mp4(path: str | os.PathLike, frames: np.ndarray, fps: int) -> None:
    """Write RGB frames as a lossless-luma H.264 mp4 with full chroma (yuv444p, qp=0), atomically.

    Args:
        path: destination ``.mp4``; its folder must exist.
        frames: uint8 array (t h w c) with c = 3, in [0, 255], h and w even.
        fps: frames per second stored in the container.

    Raises:
        ValueError: ``frames`` is not a uint8 (t h w 3) array with even h and w.
    """
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or frames.shape[1] % 2 \
            or frames.shape[2] % 2:
        raise ValueError(f"frames must be uint8 (t h w 3) with even h and w, got {frames.dtype} {frames.shape}")
    _encode(path, frames, fps, "yuv444p")
