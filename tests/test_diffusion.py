"""Video latent diffusion: training targets against closed forms, frame conditioning and its dropout, EMA, sample
files read back, and stage 2 end to end through train.py. The samplers are tested in ``test_sampling.py``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from omegaconf import OmegaConf
from torch import nn
from PIL import Image

from data.annotations import read_list_file
from data.decoding import read_clip
from data.video_writer import DECODE_TOLERANCE
from models.diffusion.denoising import guided_prediction, training_target
from models.diffusion.diffusion_module import VideoDiffusion, ema_decay_at, update_ema
from models.diffusion.noise import NOISE_PRIORS, sample_noise
from models.diffusion.video_io import gif_bytes, log_videos, to_uint8, write_clips
from tests.conftest import compose_config
from tests.diffusion_helpers import SCHEDULES, SHAPE, TinyDenoiser, closed_form_alphas_cumprod, run_sampler


def make_module(net: nn.Module | None = None, **kwargs) -> VideoDiffusion:
    config = dict(noise_scheduler={"beta_schedule": "linear", "prediction_type": "epsilon"}, num_classes=4,
                  num_frames=SHAPE[2], latent_channels=SHAPE[1], latent_size=SHAPE[3], optimizer=None,
                  scheduler=None, num_log_samples=0)
    config.update(kwargs)
    torch.manual_seed(0)
    return VideoDiffusion(net=net or TinyDenoiser(), **config)


# --------------------------------------------------------------------------------------------------------------------
# Training targets
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prior", NOISE_PRIORS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("num_cond_frames", [0, 2])
def test_noised_input_is_the_closed_form_and_conditioning_frames_stay_clean(prior, schedule, num_cond_frames):
    net = TinyDenoiser()
    module = make_module(net, noise_scheduler=SCHEDULES[schedule], noise_prior=prior, num_cond_frames=num_cond_frames)
    generator = torch.Generator().manual_seed(1)
    x_start = torch.randn(SHAPE, generator=generator)
    noise = sample_noise(SHAPE, prior, generator=generator)
    timesteps = torch.tensor([3, 871])
    loss = module.diffusion_loss(net, x_start, torch.tensor([1, 2]), timesteps, noise)

    abar = closed_form_alphas_cumprod(schedule)[timesteps].float()[:, None, None, None, None]
    expected = abar.sqrt() * x_start + (1 - abar).sqrt() * noise  # √ᾱ x + √(1−ᾱ) ε
    seen = net.inputs[-1]
    k = num_cond_frames
    torch.testing.assert_close(seen[:, :, k:], expected[:, :, k:], rtol=1e-5, atol=1e-5)
    assert torch.equal(seen[:, :, :k], x_start[:, :, :k])
    prediction = net(seen, timesteps, torch.tensor([1, 2]))
    torch.testing.assert_close(loss, ((prediction - noise)[:, :, k:] ** 2).mean())  # ε target, k frames left out


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_v_prediction_target_is_the_closed_form(schedule):
    scheduler = DDPMScheduler(prediction_type="v_prediction", **SCHEDULES[schedule])
    generator = torch.Generator().manual_seed(2)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps = torch.tensor([0, 517])
    abar = closed_form_alphas_cumprod(schedule)[timesteps].float()[:, None, None, None, None]
    expected = abar.sqrt() * noise - (1 - abar).sqrt() * x_start  # v = √ᾱ ε − √(1−ᾱ) x
    torch.testing.assert_close(training_target(scheduler, x_start, noise, timesteps), expected, rtol=1e-5, atol=1e-5)
    eps_scheduler = DDPMScheduler(prediction_type="epsilon", **SCHEDULES[schedule])
    assert torch.equal(training_target(eps_scheduler, x_start, noise, timesteps), noise)


def test_label_dropout_and_bad_values():
    module = make_module(label_dropout=0.5)
    with pytest.raises(ValueError, match="model.noise_scheduler.prediction_type='sample'"):
        make_module(noise_scheduler={"prediction_type": "sample"})
    with pytest.raises(ValueError, match="model.num_cond_frames=5"):
        make_module(num_cond_frames=5)
    with pytest.raises(ValueError, match="model.noise_prior='pink'"):
        make_module(noise_prior="pink")
    batch = {"latents": torch.zeros(64, *SHAPE[1:]), "label": torch.zeros(64, dtype=torch.long)}
    seen = []
    module.diffusion_loss = lambda net, x, labels, timesteps, noise, *given: seen.append(labels) or x.sum()
    module.log = lambda *args, **kwargs: None
    torch.manual_seed(0)
    module.training_step(batch, 0)
    dropped = (seen[0] == module.net.null_label).float().mean()
    assert 0.3 < dropped < 0.7 and set(seen[0].tolist()) == {0, module.net.null_label}


def test_cond_frame_dropout_trains_some_clips_with_zero_given_frames(monkeypatch):
    net = TinyDenoiser()
    module = make_module(net, num_cond_frames=2, cond_frame_dropout=0.2)
    generator = torch.Generator().manual_seed(3)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps, labels = torch.tensor([5, 700]), torch.tensor([1, 2])
    loss = module.diffusion_loss(net, x_start, labels, timesteps, noise, torch.tensor([True, False]))
    seen = net.inputs[-1]
    assert torch.equal(seen[0, :, :2], x_start[0, :, :2]) and torch.equal(seen[1, :, :2], torch.zeros_like(seen[1, :, :2]))
    reference = make_module(TinyDenoiser(), num_cond_frames=2).diffusion_loss(net, x_start, labels, timesteps, noise)
    assert torch.equal(net.inputs[-1][0], seen[0]) and not torch.equal(loss, reference)  # only clip 1 differs
    torch.testing.assert_close(loss, ((net(seen, timesteps, labels) - noise)[:, :, 2:] ** 2).mean())  # k frames out
    # training_step draws the dropout per clip from the global generator
    batch = {"latents": torch.zeros(64, *SHAPE[1:]), "label": torch.zeros(64, dtype=torch.long)}
    given, draws = [], []
    module.diffusion_loss = lambda net, x, labels, timesteps, noise, frames: given.append(frames) or x.sum()
    module.log = lambda *args, **kwargs: None
    plain = make_module(num_cond_frames=2)
    plain.diffusion_loss, plain.log = module.diffusion_loss, module.log
    rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **kw: draws.append(a) or rand(*a, **kw))
    torch.manual_seed(0)
    module.training_step(batch, 0)
    assert given[0].dtype == torch.bool and 0.7 < given[0].float().mean() < 0.9  # True: given, 1 - p of the clips
    with_dropout = len(draws)
    plain.training_step(batch, 0)
    assert given[1] is None and len(draws) == 2 * with_dropout - 1  # no dropout, one draw fewer: older runs'
    # random streams are unchanged
    with pytest.raises(ValueError, match="model.cond_frame_dropout=0.2"):
        make_module(cond_frame_dropout=0.2)  # no frames are given
    with pytest.raises(ValueError, match="model.cond_frame_dropout=1"):
        make_module(num_cond_frames=2, cond_frame_dropout=1)


def test_frame_guidance_needs_a_model_trained_with_cond_frame_dropout():
    cond = torch.randn(1, 3, 2, 4, 4)
    module = make_module(num_cond_frames=2, num_classes=0).eval()
    with pytest.raises(ValueError, match="without model.cond_frame_dropout"):
        module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2, frame_guidance_scale=2.0)
    module.hparams.cond_frame_dropout = 0.1
    guided = module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2, frame_guidance_scale=2.0,
                           generator=torch.Generator().manual_seed(0))
    plain = module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(guided[:, :, :2], cond) and not torch.allclose(guided, plain)
    with pytest.raises(ValueError, match="no frames are given"):
        run_sampler(0, frame_guidance_scale=2.0)
    # no labels: plain guidance on the frames, against predictions taken one by one
    net, x, timesteps = TinyDenoiser().eval(), torch.randn(SHAPE), torch.tensor([10, 900])
    x_null = torch.cat([torch.zeros_like(x[:, :, :2]), x[:, :, 2:]], dim=2)
    with torch.no_grad():
        e, e_null = net(x, timesteps, None), net(x_null, timesteps, None)
        torch.testing.assert_close(guided_prediction(net, x, timesteps, None, 1.0, 2.5, 2), e_null + 2.5 * (e - e_null))


def test_ema_update_is_the_closed_form():
    net, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in ema.parameters()]
    update_ema(ema, net, decay=0.9)
    for old, new, param in zip(before, ema.parameters(), net.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * param)


def test_ema_decay_warmup_matches_diffusers_ema_model():
    from diffusers.training_utils import EMAModel

    reference = EMAModel(nn.Linear(2, 2).parameters(), decay=0.999)
    for update in (1, 2, 3, 50, 5000):
        assert ema_decay_at(update, 0.999) == pytest.approx(reference.get_decay(update))
    assert ema_decay_at(1, 0.999, warmup=False) == 0.999


def test_ema_updates_equal_diffusers_ema_model_steps():
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    ours = copy.deepcopy(net)
    reference = EMAModel(net.parameters(), decay=0.99)  # its own warm-up schedule, like ema_decay_at
    for update in range(1, 8):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))  # a training step
        update_ema(ours, net, ema_decay_at(update, 0.99))
        reference.step(net.parameters())
    for ema_param, shadow in zip(ours.parameters(), reference.shadow_params):
        torch.testing.assert_close(ema_param, shadow, rtol=1e-6, atol=1e-6)


# Sample files and logging
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, tolerance", [(1, DECODE_TOLERANCE), (3, 3)])
def test_written_clips_read_back_with_their_frames_size_values_and_labels(tmp_path, channels, tolerance):
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(3, channels, 6, 16, 32, generator=generator) * 2 - 1  # (b c t h w) in [-1, 1]
    video = torch.nn.functional.avg_pool3d(video, (1, 3, 3), 1, (0, 1, 1))  # smooth content, like decoded samples
    clips = to_uint8(video)
    lines = write_clips(tmp_path, clips, [5, 0, 7])
    (tmp_path / "samples.txt").write_text("\n".join(lines) + "\n")
    samples = read_list_file(tmp_path / "samples.txt", tmp_path)
    assert [s.label for s in samples] == [5, 0, 7]
    for sample, clip in zip(samples, clips):
        decoded = read_clip(sample.path, range(6))  # (3 t h w) uint8
        assert decoded.shape == (3, 6, 16, 32)
        expected = clip.expand(3, -1, -1, -1).int()
        assert (decoded.int() - expected).abs().max() <= tolerance


def test_gif_grid_and_tensorboard_and_csv_logging(tmp_path):
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    videos = to_uint8(torch.rand(3, 1, 4, 8, 8) * 2 - 1)
    gif = Image.open(__import__("io").BytesIO(gif_bytes(videos, nrow=2)))
    assert gif.n_frames == 4 and gif.size == (2 * 10 + 2, 2 * 10 + 2)  # 2x2 grid of 8-px clips, 2-px borders
    tensorboard = TensorBoardLogger(tmp_path / "tb", name=None, version=0)
    folder = log_videos([CSVLogger(tmp_path), tensorboard], videos, [1, 2, 3], tmp_path, epoch=4, step=17)
    tensorboard.experiment.flush()
    assert folder == tmp_path / "samples" / "epoch_004"
    assert [s.label for s in read_list_file(folder / "samples.txt", folder)] == [1, 2, 3]
    assert (folder / "grid.gif").is_file()
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    image = events.Images("val/samples")[0]
    assert image.step == 17 and Image.open(__import__("io").BytesIO(image.encoded_image_string)).n_frames == 4


# --------------------------------------------------------------------------------------------------------------------
# Stage 2 end to end
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def dit_config(tiny_mmnist, tiny_autoencoder, tmp_path):
    def make(*overrides: str, output_dir: Path | None = None):
        return compose_config("train", [
            "experiment=mmnist_dit", "data=mmnist_generation", f"data.root={tiny_mmnist}", "data.generate=null",
            "data.num_workers=0",
            "data.batch_size=4", f"model.autoencoder_path={tiny_autoencoder}", "model.net.embed_dim=32",
            "model.net.num_heads=4",
            "model.net.depth=2", "trainer.check_val_every_n_epoch=1", "model.num_log_samples=2", "model.log_every_n_epochs=1",
            "model.sampling.num_inference_steps=2",
            f"paths.output_dir={output_dir or tmp_path / 'run'}", "~callbacks.progress_bar",
            "+trainer.enable_model_summary=false", *overrides,
        ])

    return make


def test_fast_dev_run_of_stage_2_through_train(dit_config, tmp_path):
    from train import train

    metrics = train(dit_config("debug=fast_dev_run", "model.noise_prior=progressive", "model.num_cond_frames=2",
                               "model.noise_scheduler.prediction_type=v_prediction"))
    assert {"train/loss", "val/loss", "val/loss_raw"} <= metrics.keys()
    assert all(np.isfinite(metrics[key]) for key in ("train/loss", "val/loss"))
    samples = read_list_file(tmp_path / "run" / "samples" / "epoch_000" / "samples.txt", tmp_path / "run" / "samples"
                             / "epoch_000")  # frame-conditioned samples of the first validation clips
    assert len(samples) == 2 and read_clip(samples[0].path, range(8)).shape == (3, 8, 64, 64)


def test_cached_latents_give_the_same_loss_as_encoding_on_the_fly(tiny_autoencoder):
    module = make_module(TinyDenoiser(channels=4), num_frames=8, latent_channels=4, latent_size=16,
                         autoencoder_path=str(tiny_autoencoder))
    video = torch.rand(2, 3, 8, 64, 64) * 2 - 1
    latents = module.autoencoder.encode(video)
    assert torch.equal(module.latents({"video": video}), latents)
    generator = torch.Generator().manual_seed(0)
    noise, timesteps = torch.randn(latents.shape, generator=generator), torch.tensor([5, 500])
    labels = torch.tensor([1, 3])
    assert module.diffusion_loss(module.net, module.latents({"latents": latents}), labels, timesteps, noise) == \
        module.diffusion_loss(module.net, module.latents({"video": video}), labels, timesteps, noise)
    with pytest.raises(ValueError, match="latent_channels"):
        module.latents({"latents": latents[:, :3]})
    assert not any(key.startswith("_autoencoder") or "vae" in key for key in module.state_dict())


def test_sample_script_writes_the_ema_model_samples(dit_config, tmp_path):
    from hydra.utils import instantiate

    from scripts import sample_videos

    cfg = dit_config()
    run = tmp_path / "dit_run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    module = instantiate(cfg.model)
    with torch.no_grad():  # an EMA net that differs from the online net, so using the wrong one shows
        for param in module.ema.parameters():
            param.add_(0.05 * torch.randn_like(param))
    torch.save({"state_dict": module.state_dict()}, run / "checkpoints" / "best.ckpt")

    out = tmp_path / "samples"
    list_file = sample_videos.generate_to_folder(run / "checkpoints" / "best.ckpt", out, num_samples=3,
                                                 labels=[2, 5], steps=2, seed=7, batch_size=2, progress=False)
    samples = read_list_file(list_file, out)
    assert [s.label for s in samples] == [2, 5, 2]
    gif = Image.open(out / "grid.gif")  # one row per label (2, then 5), 8 tiles of 64 px each, 2-px borders
    assert gif.size == (8 * 66 + 2, 2 * 66 + 2)
    grey = sample_videos.generate_to_folder(run / "checkpoints" / "best.ckpt", tmp_path / "grey", num_samples=1,
                                            labels=[2], steps=2, seed=7, grey=True, progress=False)
    module.eval()
    generator = torch.Generator().manual_seed(7)
    expected = torch.cat([module.generate(torch.tensor([2, 5]), generator=generator, num_inference_steps=2),
                          module.generate(torch.tensor([2]), generator=generator, num_inference_steps=2)])
    for sample, clip in zip(samples, expected):
        decoded = read_clip(sample.path, range(8))
        assert decoded.shape == (3, 8, 64, 64)
        assert (decoded.int() - clip.int()).abs().max() <= 3
    decoded = read_clip(read_list_file(grey, grey.parent)[0].path, range(8))  # (3 t h w), R = G = B
    mean = expected[0].float().mean(dim=0).round()  # (t h w)
    # + 1: the grey clip was sampled alone and ``expected`` in a batch of two, whose float sums differ in the last
    # bits, so their uint8 values may differ by 1 before the grey file's own decoding error (seen with one thread)
    assert torch.equal(decoded[0], decoded[2]) and (decoded[0].float() - mean).abs().max() <= DECODE_TOLERANCE + 1


@pytest.mark.slow
def test_resume_continues_net_and_ema_exactly(dit_config, tmp_path):
    from models.checkpointing import load_state_dict
    from train import train

    # Step-bounded like mmnist_dit (max_epochs=-1): the interrupted run's last.ckpt is written at a training epoch's
    # end, after which Lightning's epoch counter is one ahead; ExactResume keeps the shuffle order of the next epoch.
    common = ("debug=tiny", "trainer.max_epochs=-1", "trainer.max_steps=8", "model.num_log_samples=0",
              "model.noise_prior=mixed")
    full = train(dit_config(*common, output_dir=tmp_path / "full"))
    train(dit_config(*common, "+callbacks.stop._target_=tests.test_train.StopAfterFirstEpoch",
                     output_dir=tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = train(dit_config(*common, f"ckpt_path={last}", output_dir=tmp_path / "resumed"))
    reference = load_state_dict(tmp_path / "full" / "checkpoints" / "last.ckpt")
    state = load_state_dict(last)
    assert any(key.startswith("ema.") for key in state)
    for name, tensor in state.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    assert not torch.equal(state["ema.final_layer.linear.weight"], state["net.final_layer.linear.weight"])
    assert resumed["val/loss"] == pytest.approx(full["val/loss"])


def test_eval_py_samples_a_generation_checkpoint_and_scores_it_with_the_metric_library(dit_config, tmp_path,
                                                                                       monkeypatch):
    from hydra.utils import instantiate

    import models.diffusion.generate as generate
    from eval import evaluate
    from models.metrics.evaluate import evaluate_videos
    from tests.conftest import compose_config

    cfg = dit_config()
    run = tmp_path / "dit_run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    torch.save({"state_dict": instantiate(cfg.model).state_dict()}, run / "checkpoints" / "best.ckpt")

    calls = []  # what eval.py asks the sampler for
    original = generate.generate_to_folder
    monkeypatch.setattr(generate, "generate_to_folder", lambda *a, **k: calls.append(k) or original(*a, **k))
    eval_cfg = compose_config("eval", [f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "num_samples=3", "steps=2",
                                       "sampler=dpmpp_2m", f"paths.output_dir={tmp_path / 'eval'}"])
    metrics = evaluate(eval_cfg)
    assert calls[0]["sampler"] == "dpmpp_2m" and calls[0]["steps"] == 2
    samples = read_list_file(metrics["samples"], Path(metrics["samples"]).parent)
    assert len(samples) == 3 and [s.label for s in samples] == [0, 1, 2]
    direct = evaluate_videos(metrics["samples"], groups=["temporal"], progress=False).metrics
    for key in ("temporal_flickering", "warp_error_dis", "motion_smoothness_flowinterp"):
        assert metrics[f"gen/{key}"] == pytest.approx(direct[key], rel=1e-9)
    assert (tmp_path / "eval" / "generation_metrics.md").is_file()


# --------------------------------------------------------------------------------------------------------------------
# Min-SNR weighting, tubelets, time reversal, the motion learning curve
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_are_the_closed_form(prediction_type):
    from models.diffusion.diffusion_module import min_snr_weights

    scheduler = DDPMScheduler(prediction_type=prediction_type, **SCHEDULES["linear"])
    timesteps = torch.tensor([0, 40, 300, 999])
    abar = closed_form_alphas_cumprod("linear")[timesteps]
    snr = abar / (1 - abar)
    expected = snr.clamp(max=5.0) / (snr + 1 if prediction_type == "v_prediction" else snr)
    torch.testing.assert_close(min_snr_weights(scheduler, timesteps, 5.0), expected.float(), rtol=1e-5, atol=1e-7)


def test_min_snr_loss_weights_each_clip():
    from models.diffusion.diffusion_module import min_snr_weights

    net = TinyDenoiser()
    module = make_module(net, snr_gamma=5.0)
    plain = make_module(net)
    generator = torch.Generator().manual_seed(3)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps, labels = torch.tensor([2, 600]), torch.tensor([0, 1])
    per_clip = torch.stack([plain.diffusion_loss(net, x_start[i:i + 1], labels[i:i + 1], timesteps[i:i + 1],
                                                 noise[i:i + 1]) for i in range(2)])
    weights = min_snr_weights(module.train_scheduler, timesteps, 5.0)
    torch.testing.assert_close(module.diffusion_loss(net, x_start, labels, timesteps, noise),
                               (weights * per_clip).mean())
    with pytest.raises(ValueError, match="model.snr_gamma=0"):
        make_module(snr_gamma=0)


def test_frame_conditioning_must_cover_whole_tubelets():
    from models.diffusion.dit import VideoDiT

    net = VideoDiT(input_size=SHAPE[3], num_frames=4, in_channels=SHAPE[1], patch_size=2, tubelet_size=2,
                   embed_dim=16, depth=1, num_heads=2, num_classes=4)
    make_module(net, num_frames=4, num_cond_frames=2)
    with pytest.raises(ValueError, match="num_cond_frames=1 is not divisible by model.net.tubelet_size=2"):
        make_module(net, num_frames=4, num_cond_frames=1)


def write_latent_cache(folder: Path, num_clips: int = 40, classes: list[str] | None = None) -> Path:
    from data.latents import CACHE_FORMAT_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    record = {"latents": torch.randn(num_clips, 4, 8, 16, 16, generator=generator),
              "labels": torch.arange(num_clips) % 8, "paths": [f"{i}.mp4" for i in range(num_clips)],
              "meta": {"format_version": CACHE_FORMAT_VERSION, "downsample_factor": 4}}
    for split in ("train", "val", "test"):
        torch.save(record, folder / f"{split}.pt")
    if classes is not None:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder


def test_time_reversal_plays_clips_backwards_with_the_opposite_label(tmp_path):
    from data.latents import LatentDataModule

    compass = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
    datamodule = LatentDataModule(str(write_latent_cache(tmp_path / "c", classes=compass)), time_reversal=True,
                                  seed=3)
    datamodule.setup("fit")
    train, raw = datamodule.datasets["train"], datamodule.datasets["val"]
    flipped = 0
    for index in range(40):
        item = train[(index, 1)]
        if torch.equal(item["latents"], raw.latents[index]):
            assert item["label"] == raw.labels[index]
        else:
            flipped += 1
            assert torch.equal(item["latents"], raw.latents[index].flip(1))  # (c t h w): frames in reverse order
            assert item["label"] == (raw.labels[index] + 4) % 8  # E <-> W, NE <-> SW, ...
        assert torch.equal(train[(index, 1)]["latents"], item["latents"])  # a pure function of (seed, epoch, index)
    assert 10 <= flipped <= 30
    assert all(torch.equal(raw[i]["latents"], raw.latents[i]) for i in range(5))  # evaluation never reverses
    with pytest.raises(ValueError, match="time_reversal=true needs the class names"):
        LatentDataModule(str(write_latent_cache(tmp_path / "nonames")), time_reversal=True).setup("fit")
    with pytest.raises(ValueError, match="'N' has no opposite"):
        LatentDataModule(str(write_latent_cache(tmp_path / "odd", classes=["E", "N", "W"])),
                         time_reversal=True).setup("fit")


def test_motion_curve_logs_flow_direction_accuracy_of_samples(dit_config, tmp_path, tiny_autoencoder):
    from models.callbacks.motion_curve import CURVE_FILE
    from train import train

    run = tmp_path / "curve_run"
    train(dit_config("debug=tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=4", "test=false",
                     "model.num_log_samples=0", "callbacks.motion_curve.every_n_steps=2",  # mmnist_dit has the callback
                     "callbacks.motion_curve.num_samples=8", "callbacks.motion_curve.num_inference_steps=2",
                     output_dir=run))
    rows = (run / CURVE_FILE).read_text().splitlines()
    assert rows[0] == "step,flow_direction_accuracy,speed_px_per_frame"
    assert [int(row.split(",")[0]) for row in rows[1:]] == [2, 4]
    assert all(0.0 <= float(row.split(",")[1]) <= 1.0 for row in rows[1:])
    logged = (next(run.glob("csv/version_*/metrics.csv"))).read_text().splitlines()[0]
    assert "curve/flow_direction_accuracy" in logged


def test_rows_by_label_puts_each_label_on_its_own_row_and_pads_with_black():
    from models.diffusion.video_io import rows_by_label

    clips = [torch.full((1, 2, 4, 4), value, dtype=torch.uint8) for value in (10, 20, 30, 40, 50)]
    tiles = rows_by_label(clips, [3, 1, 3, 3, 1], per_row=2)  # label 3 has one clip too many; label 1 fits
    assert [int(tile.max()) for tile in tiles] == [20, 50, 10, 30]
    tiles = rows_by_label(clips[:3], [0, 1, 1], per_row=3)
    assert [int(tile.max()) for tile in tiles] == [10, 0, 0, 20, 30, 0]
    with pytest.raises(ValueError, match="same non-zero number"):
        rows_by_label(clips, [0, 1])


def test_score_samples_samples_and_scores_the_final_weights(dit_config, tmp_path):
    from models.diffusion.generate import generate_to_folder
    from train import train

    run = tmp_path / "scored"
    train(dit_config("debug=tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "test=false",
                     "model.num_log_samples=0", "callbacks.motion_curve.every_n_steps=1000",
                     "callbacks.score_samples.num_samples=4", "callbacks.score_samples.steps=2", output_dir=run))
    report = json.loads((run / "samples_metrics.json").read_text())
    assert report["protocol"]["num_clips"] == 4 and "temporal_flickering" in report["metrics"]
    assert "classifier_accuracy" in report["skipped"]  # no classifier given
    # The samples are those of the run's final weights: drawn again from last.ckpt, they are the same clips.
    again = generate_to_folder(run / "checkpoints" / "last.ckpt", tmp_path / "again", 4, steps=2, grey=True,
                               progress=False)
    first = read_list_file(run / "samples" / "samples.txt", run / "samples")
    second = read_list_file(again, again.parent)
    for a, b in zip(first, second):
        assert torch.equal(read_clip(a.path, range(8)), read_clip(b.path, range(8)))
