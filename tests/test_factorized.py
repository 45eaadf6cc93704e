"""Factorized generation (Emu Video): an image stage draws frame 1, a video stage given one frame draws the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.annotations import read_list_file
from models.diffusion import labels as label_sets

from .test_label_sets import multi_set_config, write_multi_set_cache


@pytest.fixture(scope="module")
def stages(tmp_path_factory, tiny_autoencoder):
    """A tiny image stage, a video stage given one frame (started from it; its frame dropped half the time, for frame
    guidance) and one given none, two steps each."""
    from train import train

    root = tmp_path_factory.mktemp("factorized")
    cache = write_multi_set_cache(root / "cache")
    image = root / "image"
    train(multi_set_config(cache, tiny_autoencoder, image, "experiment=mmnist_dit_image", "model.init_from=null",
                           "callbacks.motion_curve.every_n_steps=1000", "model.num_log_samples=0"))
    runs = {"image": image / "checkpoints" / "last.ckpt"}
    for name, k in (("cond1", 1), ("cond0", 0)):
        train(multi_set_config(cache, tiny_autoencoder, root / name, f"model.init_from={runs['image']}",
                               "model.new_label_init=normal", "model.net.temporal_label_sets=[direction]",
                               f"model.num_cond_frames={k}", f"model.cond_frame_dropout={0.5 if k else 0.0}",
                               "callbacks.motion_curve.every_n_steps=1000",
                               "model.num_log_samples=0"))
        runs[name] = root / name / "checkpoints" / "last.ckpt"
    return runs


def test_the_first_frame_of_every_clip_is_the_image_stages_sample_for_its_digit(stages, tmp_path):
    from data.decoding import read_clip
    from models.diffusion.generate import generate_to_folder, load_model

    out = generate_to_folder(stages["cond1"], tmp_path / "clips", num_samples=6, steps=3, batch_size=6, grey=True,
                             progress=False, first_frame_from=stages["image"], first_frame_guidance=2.0,
                             guidance_scale={"direction": 1.0, "digit": 2.0}, seed=3)
    # the labels are asked for (a balanced grid), not taken from the test split, and no reference list is written
    grid = label_sets.balanced_grid({"digit": 10, "direction": 8}, 6)
    assert [s.label for s in read_list_file(out.parent / "samples_digit.txt", out.parent)] == grid["digit"]
    assert [s.label for s in read_list_file(out, out.parent)] == grid["direction"]
    assert not (out.parent / "reference.txt").exists()

    # reference: the image stage alone, with the sampler's first draws and the clips' digits only
    image = load_model(stages["image"])
    digits = torch.tensor(grid["digit"])
    expected = image.generate({"digit": digits}, generator=torch.Generator().manual_seed(3), num_inference_steps=3,
                              guidance_scale=2.0)  # (b 3 1 h w) uint8
    expected = expected.float().mean(dim=1).round()  # (b 1 h w): grey, as written
    written = torch.stack([read_clip(s.path, range(8))[0].float() for s in read_list_file(out, out.parent)])  # (b t h w)
    assert written.shape[1] == 8
    assert (written[:, :1] - expected).abs().max() <= 1  # lossless H.264; 1 for float rounding of a batched decode
    # the later frames come from the video stage, which is not the image stage repeated
    assert (written[:, 1:] - expected).abs().mean() > 1

    # first_frames reads only the image stage's sets and passes its own guidance: exactly image.sample's latents
    from models.diffusion.factorized import first_frames

    labels = {"digit": digits, "direction": torch.tensor(grid["direction"])}
    latents = first_frames(image, labels, torch.Generator().manual_seed(3), 2.0, num_inference_steps=3)
    assert latents.shape == (6, 4, 1, 16, 16)
    reference = image.sample({"digit": digits}, generator=torch.Generator().manual_seed(3), num_inference_steps=3,
                             guidance_scale=2.0)
    assert torch.equal(latents, reference)
    unguided = first_frames(image, labels, torch.Generator().manual_seed(3), 1.0, num_inference_steps=3)
    assert not torch.equal(unguided, reference)


def test_stages_that_do_not_fit_raise_with_the_reason(stages, tmp_path):
    from models.diffusion.factorized import open_first_frame_model
    from models.diffusion.generate import generate_to_folder, load_model

    with pytest.raises(ValueError, match=r"model.num_cond_frames=1\); this one has model.num_cond_frames=0"):
        generate_to_folder(stages["cond0"], tmp_path / "bad", num_samples=1, steps=2, progress=False,
                           first_frame_from=stages["image"])
    with pytest.raises(ValueError, match="frame_guidance=2.0 needs a video stage given frames"):
        generate_to_folder(stages["cond0"], tmp_path / "bad", num_samples=1, steps=2, progress=False,
                           frame_guidance=2.0)
    with pytest.raises(ValueError, match="draws 8 frames a sample"):
        open_first_frame_model(stages["cond1"], load_model(stages["cond1"]))
    with pytest.raises(ValueError, match="another autoencoder"):  # latents of two autoencoders do not mix
        open_first_frame_model(stages["image"], load_model(stages["cond1"]), autoencoder_path=str(tmp_path / "vae2"))
    with pytest.raises(FileNotFoundError):
        open_first_frame_model(tmp_path / "missing" / "checkpoints" / "last.ckpt", load_model(stages["cond1"]))


def test_the_same_autoencoder_named_another_way_is_accepted(stages, tiny_autoencoder, tmp_path, monkeypatch):
    """The check compares weights, not spellings: a link, a byte-identical copy or a relative path is the same
    autoencoder (here a diffusers folder); a copy with one byte changed is another."""
    import shutil

    from models.diffusion.factorized import open_first_frame_model, same_autoencoder
    from models.diffusion.generate import load_model

    video = load_model(stages["cond1"])
    (tmp_path / "link").symlink_to(tiny_autoencoder)
    shutil.copytree(tiny_autoencoder, tmp_path / "copy")
    monkeypatch.chdir(tiny_autoencoder.parent)
    for name in (tmp_path / "link", tmp_path / "copy", tiny_autoencoder.name):
        assert same_autoencoder(name, tiny_autoencoder)
        assert open_first_frame_model(stages["image"], video, autoencoder_path=str(name)).hparams.num_frames == 1
    shutil.copytree(tiny_autoencoder, tmp_path / "other")
    weights = next(p for p in (tmp_path / "other").iterdir() if p.suffix in (".safetensors", ".bin"))
    changed = bytearray(weights.read_bytes())
    changed[-1] ^= 0xFF
    weights.write_bytes(bytes(changed))
    assert not same_autoencoder(tmp_path / "other", tiny_autoencoder)
    with pytest.raises(ValueError, match="another autoencoder"):
        open_first_frame_model(stages["image"], video, autoencoder_path=str(tmp_path / "other"))
    # neither exists from here: the paths themselves are compared
    assert same_autoencoder("gone/ae.ckpt", Path("gone") / ".." / "gone" / "ae.ckpt")
    assert not same_autoencoder("gone/ae.ckpt", "gone/ae2.ckpt")


def test_sample_videos_takes_the_first_frame_model(stages, tmp_path, monkeypatch):
    from data.decoding import read_clip
    from models.diffusion.generate import generate_to_folder
    from scripts import sample_videos

    sample_videos.main(["--ckpt", str(stages["cond1"]), "--first-frame-from", str(stages["image"]),
                        "--first-frame-guidance", "digit=2", "--num-samples", "2", "--steps", "2",
                        "--out", str(tmp_path / "cli"), "--digit", "7", "--direction", "NE"])
    listed = tmp_path / "cli" / "samples_digit.txt"
    assert [s.label for s in read_list_file(listed, listed.parent)] == [7, 7]
    # frame guidance on a stage trained with cond_frame_dropout: frame 1 is still the image stage's
    out = generate_to_folder(stages["cond1"], tmp_path / "fg", num_samples=2, steps=2, batch_size=2, grey=True,
                             progress=False, first_frame_from=stages["image"], frame_guidance=2.0, seed=3)
    plain = generate_to_folder(stages["cond1"], tmp_path / "plain", num_samples=2, steps=2, batch_size=2, grey=True,
                               progress=False, first_frame_from=stages["image"], seed=3)
    first = [read_clip(s.path, range(1))[0].float() for s in (*read_list_file(out, out.parent),
                                                               *read_list_file(plain, plain.parent))]
    assert (first[0] - first[2]).abs().max() <= 2 and (first[1] - first[3]).abs().max() <= 2
    # --frame-guidance reaches generate_to_folder (its effect on the samples: test_diffusion / test_label_sets)
    seen = {}
    monkeypatch.setattr(sample_videos, "generate_to_folder", lambda *a, **kw: seen.update(kw) or tmp_path / "x.txt")
    sample_videos.main(["--ckpt", "c", "--num-samples", "1", "--out", "o", "--frame-guidance", "2.5"])
    assert seen["frame_guidance"] == 2.5
    with pytest.raises(SystemExit):
        sample_videos.parse_args(["--ckpt", "x", "--num-samples", "1", "--out", "y", "--first-frame-guidance", "2"])
