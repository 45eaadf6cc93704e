"""Write generated clips to disk (mp4 per clip, a gif grid per batch, a ``path label`` list) and to loggers.

* mp4: grey clips (c = 1) go through :func:`data.video_writer.write_mp4`, the writer of the real data
  (lossless H.264, yuv420p), so generated and real files share one format; RGB clips (c = 3) through
  :func:`data.video_writer.write_rgb_mp4`, the same encoder settings with 4:4:4 chroma (libx264 qp=0), so colour is
  not subsampled. Both write atomically.
* gif grid: one frame of the gif per video frame, clips tiled by ``torchvision.utils.make_grid``, saved by PIL.
* loggers (:func:`log_videos`): the files above are written to ``<root_dir>/samples/epoch_XXX/`` for every run (this
  is what a CSV logger gets); wandb logs the gif grid as a ``wandb.Video`` (lossless H.264 uses the High 4:4:4
  profile, which browsers do not play; a file path needs no moviepy); TensorBoard gets the gif grid as an
  animated image summary, which is exactly what ``SummaryWriter.add_video`` writes, built without moviepy
  (``add_video`` needs moviepy, which is not installed; it would only print a message and log nothing).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from einops import rearrange
from PIL import Image
from torchvision.utils import make_grid

from data.video_writer import write_mp4, write_rgb_mp4

DEFAULT_FPS = 8  # the fps of the Moving MNIST data (data.moving_mnist_build.dataset_parameters)
LIST_FILE = "samples.txt"
GRID_FILE = "grid.gif"


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Map a decoded video from [-1, 1] to uint8 pixels.

    Args:
        video: float tensor (b c t h w), nominally in [-1, 1]; values outside are clamped.

    Returns:
        uint8 tensor (b c t h w) in [0, 255], ``round((x + 1) · 127.5)``, on the CPU.
    """
    return ((video.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def write_video(path: str | os.PathLike, video: torch.Tensor, fps: int = DEFAULT_FPS) -> None:
    """Write one clip as mp4: grey for c = 1 (the real data's format), RGB for c = 3.

    Args:
        path: destination ``.mp4``; its folder must exist.
        video: uint8 tensor (c t h w) in [0, 255], c in {1, 3}, h and w even.
        fps: frames per second.

    Raises:
        ValueError: not a uint8 (c t h w) tensor with 1 or 3 channels.
    """
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[0] not in (1, 3):
        raise ValueError(f"video must be uint8 (c t h w) with c in (1, 3), got {video.dtype} {tuple(video.shape)}")
    if video.shape[0] == 1:
        write_mp4(path, video[0].numpy(), fps)
    else:
        write_rgb_mp4(path, rearrange(video, "c t h w -> t h w c").numpy(), fps)


def rows_by_label(videos: Sequence[torch.Tensor], labels: Sequence[int], per_row: int = 8) -> torch.Tensor:
    """Arrange clips for a grid with one row per label (ascending): the first ``per_row`` clips of each label, and
    black clips where a label has fewer.

    Args:
        videos: clips, each a uint8 tensor (c t h w) of the same shape.
        labels: one label per clip.
        per_row: clips per row.

    Returns:
        uint8 tensor (rows·per_row c t h w), for :func:`gif_bytes` with ``nrow=per_row``.

    Raises:
        ValueError: no clips, or a label count that differs from the clip count.
    """
    if not len(videos) or len(videos) != len(labels):
        raise ValueError(f"{len(videos)} clips and {len(labels)} labels: need the same non-zero number")
    blank = torch.zeros_like(videos[0])
    rows = []
    for label in sorted(set(int(label) for label in labels)):
        clips = [video for video, other in zip(videos, labels) if int(other) == label][:per_row]
        rows += clips + [blank] * (per_row - len(clips))
    return torch.stack(rows)


def gif_bytes(videos: torch.Tensor, fps: int = DEFAULT_FPS, nrow: int = 8) -> bytes:
    """An animated gif tiling a batch of clips, looping forever.

    Args:
        videos: uint8 tensor (b c t h w) in [0, 255], c in {1, 3}.
        fps: frames per second of the animation.
        nrow: clips per row of the grid.

    Returns:
        The gif file's bytes (t frames, 2-pixel borders between clips).
    """
    frames = []
    for t in range(videos.shape[2]):
        grid = make_grid(videos[:, :, t], nrow=nrow, padding=2, pad_value=128)  # (3 H W), grey expanded to RGB
        frames.append(Image.fromarray(rearrange(grid, "c h w -> h w c").numpy()))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                   loop=0)
    return buffer.getvalue()


def write_clips(
    out_dir: str | os.PathLike,
    videos: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    fps: int = DEFAULT_FPS,
    start_index: int = 0,
    subdir: str = "videos",
) -> list[str]:
    """Write each clip as ``out_dir/subdir/{index:05d}.mp4``.

    Args:
        out_dir: output folder (created if needed).
        videos: uint8 tensor (b c t h w) in [0, 255].
        labels: b class indices, written into the file name's list entry by the caller.
        fps: frames per second.
        start_index: index of the first clip (for writing a large set batch by batch).
        subdir: sub-folder of the clips.

    Returns:
        ``"relative/path.mp4 label"`` lines (paths relative to ``out_dir``), the format of
        :func:`data.annotations.read_list_file`.
    """
    (Path(out_dir) / subdir).mkdir(parents=True, exist_ok=True)
    lines = []
    for offset, (video, label) in enumerate(zip(videos, [int(label) for label in labels])):
        relative = f"{subdir}/{start_index + offset:05d}.mp4"
        write_video(Path(out_dir) / relative, video, fps)
        lines.append(f"{relative} {label}")
    return lines


def log_videos(
    loggers: Sequence,
    videos: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    root_dir: str | os.PathLike,
    epoch: int,
    step: int,
    fps: int = DEFAULT_FPS,
    tag: str = "val/samples",
) -> Path:
    """Write a batch of samples to ``<root_dir>/samples/epoch_XXX/`` and log them to wandb and TensorBoard.

    Args:
        loggers: Lightning loggers (``trainer.loggers``); wandb and TensorBoard loggers get media, others (CSV)
            only the files.
        videos: uint8 tensor (b c t h w) in [0, 255].
        labels: b class indices (captions and ``samples.txt``).
        root_dir: the run folder.
        epoch: the epoch (0-based) naming the folder.
        step: the global step the media are logged at.
        fps: frames per second.
        tag: the media key.

    Returns:
        The folder written (``videos/*.mp4``, ``samples.txt``, ``grid.gif``).
    """
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    folder = Path(root_dir) / "samples" / f"epoch_{epoch:03d}"
    lines = write_clips(folder, videos, labels, fps)
    (folder / LIST_FILE).write_text("\n".join(lines) + "\n")
    gif = gif_bytes(videos, fps)
    (folder / GRID_FILE).write_bytes(gif)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            # the gif, not the mp4s: lossless H.264 (High 4:4:4 profile) does not play in browsers
            caption = "labels " + " ".join(str(int(label)) for label in labels)
            logger.experiment.log({tag: wandb.Video(str(folder / GRID_FILE), caption=caption),
                                   "trainer/global_step": step})
        elif isinstance(logger, TensorBoardLogger):
            from tensorboard.compat.proto.summary_pb2 import Summary

            width, height = Image.open(io.BytesIO(gif)).size
            image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif)
            # add_video's own summary (an animated gif image), written through the writer's event file
            logger.experiment._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]),
                                                             step)
    return folder
