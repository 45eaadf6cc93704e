"""Diffusion training targets and the sampling loop, in pure torch over diffusers schedulers.

Training uses ``diffusers.DDPMScheduler`` (``add_noise`` accepts any noise tensor, so the correlated noise priors of
PYoCo, Ge et al. 2023, enter training unchanged). Sampling runs ``diffusers.DDIMScheduler`` for two samplers and
``diffusers.DPMSolverMultistepScheduler`` for the third:

* ``sampler="ddim"``: DDIM (Song et al. 2021, eq. 12) with ``eta`` in [0, 1]; for ``eta > 0`` the fresh noise of
  every step is drawn from the same noise prior and passed as ``variance_noise``, so correlated noise is used in
  sampling as in training (PYoCo: using it at sampling time only causes "texture sticking").
* ``sampler="ddpm"``: ancestral DDPM sampling (Ho et al. 2020, eq. 6-7, posterior variance β̃). ``DDPMScheduler.step``
  always draws i.i.d. noise, so it cannot inject a correlated prior. DDIM with ``eta=1`` has exactly DDPM's step:
  with ᾱ of the current and ᾱ' of the next timestep, σ² = (1−ᾱ')/(1−ᾱ)·(1−ᾱ/ᾱ') = β̃ (DDIM eq. 16), and the mean
  √ᾱ'·x̂₀ + √(1−ᾱ'−σ²)·ε̂ equals the posterior mean of DDPM eq. 7 once ε̂ = (x_noisy − √ᾱ·x̂₀)/√(1−ᾱ) is
  substituted; with strided timesteps both schedulers use ᾱ/ᾱ' as the step's α, and both reach ᾱ' = 1 after the
  last step (``set_alpha_to_one``). So ``"ddpm"`` is DDIM at ``eta=1`` with the prior's noise, and
  ``tests/test_sampling.py`` checks it against ``DDPMScheduler.step`` fed the same i.i.d. noise. This holds for
  the default ``variance_type="fixed_small"`` only, which is therefore required.
* ``sampler="dpmpp_2m"``: DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095), ``diffusers``'
  ``DPMSolverMultistepScheduler`` with ``algorithm_type="dpmsolver++"``, ``solver_order=2``: a second-order multistep
  solver of the same probability-flow ODE that DDIM (eta = 0) solves to first order, in data prediction, which the
  paper recommends for large guidance scales. Deterministic: only the initial latent is drawn (from the noise prior).
  ``tests/test_sampling.py`` checks both against the closed-form ODE solution for Gaussian data.

Why prior noise in every step is exact: a prior with frame covariance C makes the whole process standard i.i.d.
DDPM in the whitened coordinates C^(-1/2)·x, and every update is linear in (x_noisy, prediction, noise), so noise of
covariance C is the right noise in the original coordinates. ``tests/test_sampling.py`` samples with the exact
denoiser of Gaussian data and recovers its mean, variance and independent frames for every prior.

Classifier-free guidance (Ho & Salimans 2022): ``uncond + s·(cond − uncond)`` from one batched forward pass over
``[labels, null labels]``. With several label sets a scale per set (``{"digit": 4, "direction": 1}``) guides them
one after another, as InstructPix2Pix's two guidance scales (Brooks et al. 2023, arXiv 2211.09800, eq. 3). Frame conditioning: the clean first ``k`` latent frames replace those of the sample before
every network call and after the last step, as they were given clean in training. Frame guidance adds
``(s_f − 1)·(e − e_∅)`` to the label-guided prediction, ``e`` given the frames and ``e_∅`` given zero latent
frames instead (so with no label guidance it is ``e_∅ + s_f·(e − e_∅)``), a null that a model trained with
``cond_frame_dropout`` has seen (image guidance of Stable Video Diffusion, Blattmann et al. 2023, arXiv 2311.15127),
both branches given every label, beside the labels' guidance (Composable Diffusion, Liu et al. 2022, arXiv
2206.01714).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any, Union

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import nn
from tqdm.auto import tqdm

from models.diffusion import labels as label_sets
from models.diffusion.noise import sample_noise

PREDICTION_TYPES = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SAMPLERS = ("ddim", "ddpm", "dpmpp_2m")
# The DDPM kwargs a DPM-Solver++ scheduler shares with training (the rest, e.g. clip_sample, are DDIM/DDPM only).
_DPM_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")


def check_scheduler_config(config: Mapping[str, Any], field: str = "model.noise_scheduler") -> dict[str, Any]:
    """Validate the DDPM scheduler kwargs this project supports and return them as a plain dict.

    Args:
        config: ``DDPMScheduler`` keyword arguments, e.g. ``{"num_train_timesteps": 1000, "beta_schedule":
            "linear", "prediction_type": "epsilon", "clip_sample": False}``.
        field: config path used in error messages.

    Returns:
        The kwargs, with ``clip_sample`` False unless given: latents are not bounded to [-1, 1] as pixels are
        (diffusers defaults to clipping x̂₀ there).

    Raises:
        ValueError: an unsupported ``prediction_type``, ``beta_schedule`` or ``variance_type``, or
            ``num_train_timesteps`` < 2.
    """
    config = {"clip_sample": False, **config}
    prediction_type = config.get("prediction_type", "epsilon")
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"{field}.prediction_type={prediction_type!r} must be one of {PREDICTION_TYPES}")
    beta_schedule = config.get("beta_schedule", "linear")
    if beta_schedule not in BETA_SCHEDULES:
        raise ValueError(f"{field}.beta_schedule={beta_schedule!r} must be one of {BETA_SCHEDULES}")
    if int(config.get("num_train_timesteps", 1000)) < 2:
        raise ValueError(f"{field}.num_train_timesteps={config['num_train_timesteps']} must be >= 2")
    if config.get("variance_type", "fixed_small") != "fixed_small":
        raise ValueError(f"{field}.variance_type={config['variance_type']!r}: only 'fixed_small' (the DDPM posterior "
                         "variance) is supported, as the DDPM sampler relies on it")
    return config


def training_target(
    scheduler: DDPMScheduler, x_start: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """The regression target of the network for the scheduler's ``prediction_type``.

    Args:
        scheduler: the training scheduler.
        x_start: float tensor (b c t h w), clean latents.
        noise: float tensor (b c t h w), the noise ε that ``add_noise`` mixed in.
        timesteps: int64 tensor (b,), diffusion timesteps in [0, num_train_timesteps).

    Returns:
        ``ε`` (epsilon) or ``v = √ᾱ·ε − √(1−ᾱ)·x_start`` (v_prediction, Salimans & Ho 2022), shape (b c t h w).
    """
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(x_start, noise, timesteps)
    return noise


GuidanceScale = Union[float, Mapping[str, float]]


def check_guidance_scale(guidance_scale: GuidanceScale, labels: label_sets.Labels | None,
                         frame_guidance_scale: float = 1.0, num_cond_frames: int = 0) -> None:
    """Raise ``ValueError`` unless ``guidance_scale`` fits ``labels``: a number, or (several label sets) one scale
    for every set of ``labels``, each a finite number, named in the message when it does not fit; and unless
    ``frame_guidance_scale`` is a finite number, 1 when no frames are given (``num_cond_frames`` 0)."""
    if not math.isfinite(float(frame_guidance_scale)):
        raise ValueError(f"frame_guidance_scale={frame_guidance_scale} must be a finite number")
    if frame_guidance_scale != 1.0 and num_cond_frames <= 0:
        raise ValueError(f"frame_guidance_scale={frame_guidance_scale} guides the given frames, but no frames are "
                         "given (cond_latents / model.num_cond_frames)")
    if not isinstance(guidance_scale, Mapping):
        if labels is None and guidance_scale != 1.0:
            raise ValueError(f"guidance_scale={guidance_scale} needs labels (classifier-free guidance is conditional)")
        return
    if labels is None or torch.is_tensor(labels):
        raise ValueError(f"guidance_scale={dict(guidance_scale)}: a scale per label set needs a model conditioned on "
                         "several label sets (labels {set: (b,)})")
    if set(guidance_scale) != set(labels):
        raise ValueError(f"guidance_scale names the sets {sorted(guidance_scale)}, the labels are "
                         f"{sorted(labels)}: give one scale for every set")
    bad = {name: value for name, value in guidance_scale.items() if not math.isfinite(float(value))}
    if bad:
        raise ValueError(f"guidance_scale {bad} must be finite numbers")


def guided_prediction(
    net: nn.Module,
    x_noisy: torch.Tensor,
    timesteps: torch.Tensor,
    labels: label_sets.Labels | None,
    guidance_scale: GuidanceScale = 1.0,
    frame_guidance_scale: float = 1.0,
    num_cond_frames: int = 0,
) -> torch.Tensor:
    """Network output with classifier-free guidance.

    Args:
        net: maps (x (b c t h w), timesteps (b,), labels (b,) | None) to (b c t h w); has ``null_label``.
        x_noisy: float tensor (b c t h w); its first ``num_cond_frames`` frames are the given clean frames.
        timesteps: int64 tensor (b,).
        labels: int64 tensor (b,) of class indices, ``{set: int64 (b,)}`` (several label sets), or None
            (unconditional: the null label).
        guidance_scale: s; 1 is the plain conditional prediction (one forward pass without frame guidance), 0 the
            unconditional one. With several sets the unconditional branch nulls every set (joint guidance). Or, for
            several sets, one scale per set ``{set_1: s_1, ..., set_n: s_n}``, applied in that order (nested
            guidance, InstructPix2Pix, Brooks et al. 2023, arXiv 2211.09800, eq. 3): with ``e_i`` the prediction
            given the first i sets and the rest null, ``e_0 + Σ_i s_i·(e_i − e_(i−1))``; n + 1 predictions in one
            batched forward pass. Equal scales s give joint guidance with s; all 1 the plain conditional prediction.
        frame_guidance_scale: s_f over the given frames; ``(s_f − 1)·(e − e_∅)`` is added, ``e`` given the frames
            and every label, ``e_∅`` the same with the frames replaced by zeros (one more prediction in the same
            pass). 1: none.
        num_cond_frames: k, the given leading frames of ``x_noisy``.

    Returns:
        ``uncond + s·(cond − uncond)`` (Ho & Salimans 2022, eq. 6) or the nested sum, plus the frame term, float
        tensor (b c t h w).

    Raises:
        ValueError: see :func:`check_guidance_scale`.
    """
    check_guidance_scale(guidance_scale, labels, frame_guidance_scale, num_cond_frames)
    levels, scales = [labels], []  # e_first ... e_n, each with the frames given; e_n = every label given
    if labels is not None and isinstance(guidance_scale, Mapping):  # nested
        null = label_sets.null_like(labels, net.null_label)
        names = list(guidance_scale)
        scales = [float(guidance_scale[name]) for name in names]
        first = 0  # leading scales of 1 telescope: e_0 + Σ_(i <= m) (e_i − e_(i−1)) = e_m, so e_0 ... e_(m−1) are skipped
        while first < len(names) and scales[first] == 1.0:
            first += 1
        levels = [{name: labels[name] if name in names[:i] else null[name] for name in labels}
                  for i in range(first, len(names) + 1)]
        scales = scales[first:]
    elif labels is not None and guidance_scale != 1.0:  # joint: e_0 (every set null), e_1 (as given)
        levels, scales = [label_sets.null_like(labels, net.null_label), labels], [float(guidance_scale)]
    frame_scale = float(frame_guidance_scale)
    inputs = [x_noisy] * len(levels)
    if frame_scale != 1.0:  # e_∅ first: every label, the given frames zeroed
        null_frames = torch.cat([torch.zeros_like(x_noisy[:, :, :num_cond_frames]), x_noisy[:, :, num_cond_frames:]],
                                dim=2)  # (b c t h w)
        levels, inputs = [labels, *levels], [null_frames, *inputs]
    k = len(levels)
    if k == 1:
        return net(x_noisy, timesteps, labels)
    batch = levels[-1]  # one batched pass, the most-given level first ([labels, null] for joint guidance)
    for level in reversed(levels[:-1]):
        batch = label_sets.concat(batch, level) if batch is not None else None
    out = net(torch.cat(inputs[::-1]), torch.cat([timesteps] * k), batch).chunk(k)[::-1]  # k × (b c t h w)
    offset = 1 if frame_scale != 1.0 else 0
    guided = out[offset]
    for i, scale in enumerate(scales, start=offset + 1):
        guided = guided + scale * (out[i] - out[i - 1])  # joint: uncond + s·(cond − uncond)
    if offset:
        guided = guided + (frame_scale - 1.0) * (out[-1] - out[0])
    return guided


def _prior_noise(shape, noise_prior, alpha, generator, device) -> torch.Tensor:
    # Drawn on the generator's device and moved, so a CPU generator gives the same numbers on any device.
    noise_device = generator.device if generator is not None else device
    return sample_noise(tuple(shape), noise_prior, alpha=alpha, generator=generator, device=noise_device).to(device)


@torch.no_grad()
def sample_latents(
    net: nn.Module,
    scheduler_config: Mapping[str, Any],
    shape: tuple[int, int, int, int, int],
    labels: label_sets.Labels | None = None,
    noise_prior: str = "iid",
    alpha: float | None = None,
    sampler: str = "ddim",
    num_inference_steps: int = 50,
    guidance_scale: GuidanceScale = 1.0,
    eta: float | None = None,
    cond_latents: torch.Tensor | None = None,
    frame_guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Draw latent clips by reverse diffusion.

    Args:
        net: the denoiser (see :func:`guided_prediction`), in eval mode; it runs on its parameters' device.
        scheduler_config: the ``DDPMScheduler`` kwargs the net was trained with (see :func:`check_scheduler_config`).
        shape: (b c t h w) of the latents to draw.
        labels: int64 tensor (b,) of class indices, ``{set: int64 (b,)}``, or None for unconditional sampling.
        noise_prior: ``"iid"``, ``"mixed"``, ``"progressive"`` (PYoCo) or ``"shared"``, for the initial latent and, when the
            step is stochastic, the fresh noise of every step.
        alpha: the prior's α (None: its default).
        sampler: ``"ddim"``, ``"ddpm"`` (DDIM with eta=1) or ``"dpmpp_2m"`` (DPM-Solver++(2M), deterministic); see
            the module docstring.
        num_inference_steps: denoising steps, in [1, num_train_timesteps].
        guidance_scale: classifier-free guidance scale s (1: none), or one per label set (see
            :func:`guided_prediction`).
        eta: DDIM stochasticity in [0, 1] (None: 0 for ddim; ddpm needs None or 1, dpmpp_2m None or 0).
        cond_latents: float tensor (b c k h w), clean first k latent frames to condition on, or None.
        frame_guidance_scale: guidance over ``cond_latents`` (see :func:`guided_prediction`); 1: none.
        generator: seeds the initial latent and every step's noise; the same generator state gives the same
            latents. A CPU generator gives the same numbers on any device.
        progress: show a tqdm bar over the steps.

    Returns:
        float32 tensor ``shape``, the final latents x₀ (with the conditioning frames exactly as given).

    Raises:
        ValueError: a bad sampler, step count, eta, or label / conditioning shape.
    """
    config = check_scheduler_config(scheduler_config)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r} must be one of {SAMPLERS}")
    if sampler == "ddpm":
        if eta not in (None, 1.0):
            raise ValueError(f"eta={eta} is not used by sampler='ddpm' (ancestral sampling is eta=1); leave it unset")
        eta = 1.0
    if sampler == "dpmpp_2m" and eta not in (None, 0.0):
        raise ValueError(f"eta={eta} is not used by sampler='dpmpp_2m' (a deterministic ODE solver); leave it unset")
    eta = 0.0 if eta is None else float(eta)
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta={eta} must be in [0, 1]")
    num_train_timesteps = int(config.get("num_train_timesteps", 1000))
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise ValueError(f"num_inference_steps={num_inference_steps} must be in [1, {num_train_timesteps}]")
    batch_size, _, num_frames = shape[:3]
    if labels is not None and label_sets.batch_size_of(labels) != batch_size:
        raise ValueError(f"labels for {label_sets.batch_size_of(labels)} clips do not match the batch size {batch_size}")
    num_cond = 0 if cond_latents is None else cond_latents.shape[2]
    check_guidance_scale(guidance_scale, labels, frame_guidance_scale, num_cond)
    if cond_latents is not None and (
        tuple(cond_latents.shape[:2]) != tuple(shape[:2]) or tuple(cond_latents.shape[3:]) != tuple(shape[3:])
        or not 0 < num_cond < num_frames
    ):
        raise ValueError(f"cond_latents of shape {tuple(cond_latents.shape)} must be (b c k h w) with 0 < k < t "
                         f"for latents of shape {tuple(shape)}")

    tensor = next(itertools.chain(net.parameters(), net.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    if sampler == "dpmpp_2m":
        scheduler = DPMSolverMultistepScheduler(**{key: config[key] for key in _DPM_KEYS if key in config},
                                                algorithm_type="dpmsolver++", solver_order=2)
    else:
        scheduler = DDIMScheduler.from_config({**config, "set_alpha_to_one": True})
    scheduler.set_timesteps(num_inference_steps, device=device)
    labels = label_sets.to_device(labels, device)
    if cond_latents is not None:
        cond_latents = cond_latents.to(device=device, dtype=torch.float32)

    latents = _prior_noise(shape, noise_prior, alpha, generator, device) * scheduler.init_noise_sigma
    for timestep in tqdm(scheduler.timesteps, desc="sampling", disable=not progress, leave=False):
        if cond_latents is not None:
            latents = torch.cat([cond_latents, latents[:, :, num_cond:]], dim=2)  # (b c t h w)
        model_input = scheduler.scale_model_input(latents, timestep)
        timesteps = timestep.expand(batch_size).to(device=device, dtype=torch.long)
        model_output = guided_prediction(net, model_input, timesteps, labels, guidance_scale, frame_guidance_scale,
                                         num_cond)  # (b c t h w)
        if sampler == "dpmpp_2m":
            latents = scheduler.step(model_output.float(), timestep, latents).prev_sample  # (b c t h w)
            continue
        variance_noise = _prior_noise(shape, noise_prior, alpha, generator, device) if eta > 0 else None
        latents = scheduler.step(model_output.float(), timestep, latents, eta=eta,
                                 variance_noise=variance_noise).prev_sample  # (b c t h w)
    if cond_latents is not None:
        latents = torch.cat([cond_latents, latents[:, :, num_cond:]], dim=2)
    return latents
