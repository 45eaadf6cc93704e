"""What a trained denoiser uses: its loss on real clips when one input is taken away.

A diagnostic for the research question (where does temporal coherence come from?) and for debugging conditioning.
The denoising loss of real latent clips is measured per band of diffusion timesteps, as given and under
interventions, each with the same clips, timesteps and noise:

* ``<set> null``: one label set replaced by its null label (what classifier-free guidance's unconditional branch
  sees); ``<set> wrong``: each label moved by half the class count (e.g. a direction to its opposite). A set the
  model ignores leaves the loss unchanged under both.
* ``temporal attention off``: every temporal attention's output projection zeroed (a copy of the net): frames are
  denoised without seeing each other. The rise is what the temporal layers contribute.
* ``frames reversed``: the clip played backwards (clean latents and noise alike, labels kept), which changes nothing
  for a model that ignores frame order.

The loss is the training objective (``models.diffusion.denoising.training_target``: ε or v) over the frames after
the ``num_cond_frames`` clean ones. The interventions follow the ablation logic of probing studies (e.g. the
"which input does the model use" tests of Geirhos et al. 2020, arXiv 2004.07780); nothing here is a published metric.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from diffusers import DDPMScheduler
from torch import nn

from models.diffusion import labels as label_sets
from models.diffusion.denoising import check_scheduler_config, training_target

DEFAULT_BANDS = ((0, 200), (200, 400), (400, 600), (600, 800), (800, 1000))
AS_GIVEN = "as given"
TEMPORAL_OFF = "temporal attention off"
REVERSED = "frames reversed"


def temporal_off(net: nn.Module) -> nn.Module | None:
    """A copy of ``net`` whose temporal attentions output zero, or None if it has none (e.g. ``space_only``)."""
    names = [name for name, module in net.named_modules() if name.endswith("temporal_attn")]
    if not names:
        return None
    off = copy.deepcopy(net)
    for name in names:
        proj = off.get_submodule(name).proj
        nn.init.zeros_(proj.weight)
        if proj.bias is not None:
            nn.init.zeros_(proj.bias)
    return off


def _wrong(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return (labels + num_classes // 2) % num_classes


def interventions(net: nn.Module, labels: label_sets.Labels | None) -> dict[str, tuple[nn.Module, object, bool]]:
    """The probes for ``net`` and ``labels``: name -> (net, labels, reverse the frames)."""
    probes: dict[str, tuple[nn.Module, object, bool]] = {AS_GIVEN: (net, labels, False)}
    null = getattr(net, "null_label", None)
    if isinstance(labels, Mapping):
        for name, values in labels.items():
            probes[f"{name} null"] = (net, {**labels, name: torch.full_like(values, null[name])}, False)
            probes[f"{name} wrong"] = (net, {**labels, name: _wrong(values, int(null[name]))}, False)
    elif labels is not None and isinstance(null, int) and null > 1:
        probes["label null"] = (net, torch.full_like(labels, null), False)
        probes["label wrong"] = (net, _wrong(labels, null), False)
    off = temporal_off(net)
    if off is not None:
        probes[TEMPORAL_OFF] = (off, labels, False)
    probes[REVERSED] = (net, labels, True)
    return probes


@torch.no_grad()
def loss_probe(
    net: nn.Module,
    scheduler_config: Mapping,
    latents: torch.Tensor,
    labels: label_sets.Labels | None = None,
    bands: tuple[tuple[int, int], ...] = DEFAULT_BANDS,
    num_cond_frames: int = 0,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Mean denoising loss per timestep band, as given and under each intervention (module docstring).

    Args:
        net: the denoiser ``(x (b c t h w), timesteps (b,), labels) -> (b c t h w)``, e.g. a run's EMA
            :class:`models.diffusion.dit.VideoDiT`; put in eval mode here.
        scheduler_config: the ``DDPMScheduler`` kwargs it was trained with.
        latents: float tensor (n c t h w), clean (scaled) latents of real clips.
        labels: int64 (n,), ``{set: int64 (n,)}``, or None.
        bands: half-open timestep ranges [lo, hi); every clip gets one timestep drawn uniformly in each band.
        num_cond_frames: k leading frames given clean and left out of the loss (as in training).
        batch_size: clips per forward pass.
        seed: seeds the timesteps and the noise (the same for every intervention).

    Returns:
        ``{intervention: {"lo-hi": mean squared error}}`` for each band, interventions in the order of
        :func:`interventions`.

    Raises:
        ValueError: a band outside [0, num_train_timesteps) or empty, or labels that do not match the clips.
    """
    config = check_scheduler_config(scheduler_config)
    scheduler = DDPMScheduler.from_config(config)
    num_train = int(config.get("num_train_timesteps", 1000))
    if any(not 0 <= lo < hi <= num_train for lo, hi in bands):
        raise ValueError(f"bands={bands} must be ranges [lo, hi) with 0 <= lo < hi <= {num_train}")
    n = latents.shape[0]
    if labels is not None and label_sets.batch_size_of(labels) != n:
        raise ValueError(f"labels for {label_sets.batch_size_of(labels)} clips, latents for {n}")
    net.eval()
    generator = torch.Generator().manual_seed(seed)
    latents = latents.float()
    noise = torch.randn(latents.shape, generator=generator)
    k = num_cond_frames
    results: dict[str, dict[str, float]] = {}
    probes = interventions(net, labels)
    for lo, hi in bands:
        timesteps = torch.randint(lo, hi, (n,), generator=generator)
        for name, (model, probe_labels, reverse) in probes.items():
            x, eps = (latents.flip(2), noise.flip(2)) if reverse else (latents, noise)
            total = 0.0
            for start in range(0, n, batch_size):
                part = slice(start, start + batch_size)
                x_noisy = scheduler.add_noise(x[part], eps[part], timesteps[part])
                if k:
                    x_noisy = torch.cat([x[part][:, :, :k], x_noisy[:, :, k:]], dim=2)
                batch_labels = None if probe_labels is None else label_sets.select(probe_labels, part)
                prediction = model(x_noisy, timesteps[part], batch_labels)  # (b c t h w)
                target = training_target(scheduler, x[part], eps[part], timesteps[part])
                total += (prediction[:, :, k:] - target[:, :, k:]).float().square().sum().item()
            results.setdefault(name, {})[f"{lo}-{hi}"] = total / latents[:, :, k:].numel()
    return results


def probe_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """A markdown table: one row per intervention, one column per band, the loss and its ratio to ``as given``."""
    bands = list(next(iter(results.values())))
    base = results[AS_GIVEN]
    lines = ["| input | " + " | ".join(f"t in [{band.replace('-', ', ')})" for band in bands) + " |",
             "|---|" + "---|" * len(bands)]
    for name, row in results.items():
        cells = [f"{row[band]:.4f}" + ("" if name == AS_GIVEN else f" (×{row[band] / base[band]:.2f})")
                 for band in bands]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
