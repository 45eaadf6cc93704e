"""Factorized generation: an image stage draws each clip's first frame, a video stage given one frame draws the rest.

Emu Video (Girdhar et al. 2023, "Emu Video: Factorizing Text-to-Video Generation by Explicit Image Conditioning",
arXiv 2311.10709) splits text-to-video into text-to-image and (text, image)-to-video; Stable Video Diffusion
(Blattmann et al. 2023, arXiv 2311.15127) and Video LDM's prediction model (arXiv 2304.08818) condition a video model
on given frames the same way. Here the image stage is ``experiment=mmnist_dit_image`` and the video stage a run with
``model.num_cond_frames=1``; nothing real is given, so the clip is still drawn from noise, in two steps.
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from models.diffusion.denoising import GuidanceScale
from models.diffusion.diffusion_module import VideoDiffusion
from models.run import Run, load_run


def open_first_frame_model(image: str | Path | Run, video: VideoDiffusion, device: str = "cpu",
                           autoencoder_path: str | None = None) -> VideoDiffusion:
    """Open the image stage that draws the first frame of ``video``'s clips, and check that the two fit together.

    Args:
        image: checkpoint of an image-stage run (one frame a sample, conditioned on label sets), or the opened run.
        video: the video stage, trained given its first latent frame (``model.num_cond_frames=1``).
        device: where to run the image stage.
        autoencoder_path: replaces the image run's ``model.autoencoder_path`` (as it replaces the video run's, e.g.
            when the run folders moved), so both stages are checked against the same autoencoder.

    Returns:
        The image stage's module in eval mode (sampled with its EMA weights).

    Raises:
        FileNotFoundError: the checkpoint or its run's config is missing.
        ValueError: the video stage is not given exactly one frame; the image stage draws more than one frame, is not
            conditioned on label sets, asks for a set the video stage does not know, or has other latents (shape or
            autoencoder) than the video stage.
    """
    if video.hparams.num_cond_frames != 1:
        raise ValueError(f"a first frame from an image stage needs a video stage trained given one frame "
                         f"(model.num_cond_frames=1); this one has model.num_cond_frames="
                         f"{video.hparams.num_cond_frames}")
    run = image if isinstance(image, Run) else load_run(image)
    overrides = {"autoencoder_path": str(autoencoder_path)} if autoencoder_path is not None else {}
    model = run.expect("diffusion").build_module(**overrides).to(device)
    where = f"first-frame model {run.ckpt}"
    if model.hparams.num_frames != 1:
        raise ValueError(f"{where}: draws {model.hparams.num_frames} frames a sample; an image stage draws 1 "
                         "(experiment=mmnist_dit_image)")
    if not model.hparams.conditioning:
        raise ValueError(f"{where}: not conditioned on label sets (model.conditioning, e.g. [digit])")
    unknown = sorted(set(model.label_sizes) - set(video.label_sizes))
    if unknown or any(model.label_sizes[name] != video.label_sizes[name] for name in model.label_sizes):
        raise ValueError(f"{where}: its label sets {model.label_sizes} do not fit the video stage's "
                         f"{video.label_sizes}")
    if tuple(model.latent_shape[:1] + model.latent_shape[2:]) != tuple(video.latent_shape[:1] + video.latent_shape[2:]):
        raise ValueError(f"{where}: latents (c t h w) {tuple(model.latent_shape)} do not fit the video stage's "
                         f"{tuple(video.latent_shape)}")
    if not same_autoencoder(model.hparams.autoencoder_path, video.hparams.autoencoder_path):
        paths = sorted(str(m.hparams.autoencoder_path) for m in (model, video))
        raise ValueError(f"{where}: its latents come from another autoencoder than the video stage's: {paths}")
    return model


def same_autoencoder(a: str | Path, b: str | Path) -> bool:
    """Whether two ``model.autoencoder_path`` values name the same stage-1 weights.

    Where both exist: the same file or folder however it is named (relative or absolute, through a link), or a
    byte-identical copy (a stage-1 checkpoint file, or a diffusers folder with the same files). Where either does
    not exist from the current directory: the two paths resolved against it.
    """
    pa, pb = Path(str(a)), Path(str(b))
    if pa.exists() and pb.exists():
        return os.path.samefile(pa, pb) or _same_bytes(pa, pb)
    return pa.resolve() == pb.resolve()


def _same_bytes(a: Path, b: Path) -> bool:
    """Two files with the same bytes, or two folders holding the same relative file names with the same bytes."""
    if a.is_file() and b.is_file():
        return filecmp.cmp(a, b, shallow=False)
    if not (a.is_dir() and b.is_dir()):
        return False
    files = [sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file()) for root in (a, b)]
    return files[0] == files[1] and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files[0])


@torch.no_grad()
def first_frames(
    image: VideoDiffusion,
    labels: Mapping[str, torch.Tensor],
    generator: torch.Generator | None = None,
    guidance_scale: GuidanceScale | None = None,
    **sampling: Any,
) -> torch.Tensor:
    """Draw each clip's first latent frame with the image stage, asked for the clip's labels of the sets it knows.

    Args:
        image: the image stage (:func:`open_first_frame_model`).
        labels: ``{set: int64 (b,)}``, the clips' labels of every set of the video stage (the image stage reads its
            own sets, e.g. the digit, and leaves the others, e.g. the direction).
        generator: seeds the image stage's sampler.
        guidance_scale: classifier-free guidance of the image stage (None: its run's default).
        **sampling: ``sampler``, ``num_inference_steps``, ``eta`` (None: the image run's defaults).

    Returns:
        float32 tensor (b c 1 h w), clean latents to give the video stage as ``cond_latents``.
    """
    own = {name: labels[name] for name in image.label_sizes}
    return image.sample(own, generator=generator, guidance_scale=guidance_scale, **sampling)


__all__ = ["first_frames", "open_first_frame_model", "same_autoencoder"]
