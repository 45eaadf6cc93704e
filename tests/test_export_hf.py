"""scripts/export_hf.py: a run of ours as an HF folder that transformers loads with the run's logits, class names and
input protocol; runs without an HF counterpart are refused and leave nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from scripts import export_hf
from tests.conftest import compose_config

transformers = pytest.importorskip("transformers")

DIRECTIONS = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
TINY = ("data.num_frames=4", "data.crop_size=32", "data.resize_size=40", "data.train_scale=[32,32]",
        "data.mean=[0.1,0.2,0.3]", "data.std=[0.5,0.4,0.3]", "model.net.embed_dim=32", "model.net.depth=2",
        "model.net.num_heads=4", "model.net.patch_size=8")


def _perturb(state: dict[str, torch.Tensor], seed: int = 0) -> None:
    """Give every ``net.*`` weight its own values, so that a wrong map or activation shows in the logits: a fresh
    LayerNorm is all ones and a fresh temporal_fc all zeros (swapped, they would still match), and pre-activations of
    std ~0.05 are where exact and tanh GELU agree to 1e-4."""
    generator = torch.Generator().manual_seed(seed)
    for key, value in state.items():
        if key.startswith("net.") and value.is_floating_point():
            value.add_(0.3 * torch.randn(value.shape, generator=generator))


def _train_overrides(root: Path, run: Path, *overrides: str) -> list[str]:
    return [*overrides, f"data.root={root}", f"paths.output_dir={run}", "~callbacks.progress_bar"]


def _saved_run(run: Path, root: Path, *overrides: str, weights: bool = True) -> Path:
    """A run folder as train.py leaves it (resolved config.yaml, checkpoints/best.ckpt of the LightningModule's
    state dict), without training: the module is built from the composed config, its net weights perturbed."""
    cfg = compose_config("train", _train_overrides(root, run, *overrides))
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    state = instantiate(cfg.model).state_dict() if weights else {}  # a refused run is refused before its weights
    _perturb(state)
    torch.save({"state_dict": state, "epoch": 0, "global_step": 0}, run / "checkpoints" / "best.ckpt")
    return run


@pytest.fixture(scope="module")
def trained_run(tiny_mmnist, tmp_path_factory) -> Path:
    """A TimeSformer (divided space-time, per-frame patches) trained by train.py for one step on the tiny dataset, its
    checkpoint's net weights then perturbed in place (every other entry of the Lightning checkpoint kept)."""
    from train import train

    run = tmp_path_factory.mktemp("export") / "divided"
    train(compose_config("train", _train_overrides(
        tiny_mmnist, run, "~experiment", *TINY, "model.net.tubelet_size=1", "data.generate=null",
        "data.num_workers=0", "data.batch_size=8", "debug=tiny", "trainer.max_epochs=1",
        "trainer.limit_train_batches=1", "trainer.limit_val_batches=1", "+trainer.num_sanity_val_steps=0",
        "+trainer.enable_model_summary=false", "test=false")))
    ckpt = run / "checkpoints" / "best.ckpt"
    checkpoint = torch.load(ckpt, weights_only=True)
    _perturb(checkpoint["state_dict"])
    torch.save(checkpoint, ckpt)
    return run


def _assert_hf_logits_equal_ours(run: Path, out: Path, hf_class) -> transformers.PreTrainedModel:
    """transformers loads ``out`` with every key used and gives the run's logits on a random clip (eval mode)."""
    from models.run import load_run

    hf, info = hf_class.from_pretrained(out, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    ours = load_run(run).build_net()
    config = hf.config
    torch.manual_seed(1)
    video = torch.randn(2, 3, config.num_frames, config.image_size, config.image_size)  # (b c t h w)
    with torch.no_grad():
        expected = ours(video)
        got = hf.eval()(pixel_values=video.permute(0, 2, 1, 3, 4)).logits  # HF takes (b t c h w)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-4
    return hf


def test_a_trained_timesformer_run_loads_in_transformers_with_its_logits_and_class_names(trained_run, tmp_path,
                                                                                         capsys):
    out = tmp_path / "hf"
    export_hf.main([str(trained_run), str(out)])  # the CLI, with its own check against transformers
    assert "logits match transformers" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    hf = _assert_hf_logits_equal_ours(trained_run, out, transformers.TimesformerForVideoClassification)
    assert hf.config.attention_type == "divided_space_time" and hf.config.num_frames == 4
    # Class names come from classes_direction.txt beside the run's train_direction.txt.
    assert [hf.config.id2label[k] for k in range(8)] == DIRECTIONS
    assert hf.config.label2id == {name: k for k, name in enumerate(DIRECTIONS)}


@pytest.mark.parametrize("overrides", [
    ("model.net.attention_type=joint_space_time", "model.net.tubelet_size=1", "model.net.qkv_bias=false"),
    ("model=vivit", "model.net.variant=1", "model.net.tubelet_size=2", "model.net.mlp_act=gelu"),
    ("model=vivit", "model.net.variant=1", "model.net.tubelet_size=1", "model.net.mlp_act=gelu_tanh"),
], ids=["timesformer-joint-no-qkv-bias", "vivit-model1-tubelet2", "vivit-model1-tubelet1-gelu-tanh"])
def test_supported_layouts_load_in_transformers_with_the_runs_logits(overrides, tmp_path):
    run = _saved_run(tmp_path / "run", tmp_path / "no-data", "~experiment", *TINY, *overrides)
    out = export_hf.export(run, tmp_path / "hf", verify=False)  # parity checked here, not by the script's check
    vivit = "model=vivit" in overrides
    hf_class = transformers.VivitForVideoClassification if vivit else transformers.TimesformerForVideoClassification
    hf = _assert_hf_logits_equal_ours(run, out, hf_class)
    # No class names anywhere (the data root does not exist): HF's default names, with the run's class count.
    assert hf.config.id2label == {k: f"LABEL_{k}" for k in range(8)} and hf.config.num_labels == 8


def test_class_names_from_a_file_must_fit_the_class_count(trained_run, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class {k}" for k in range(8)) + "\n")
    export_hf.export(trained_run, tmp_path / "hf", classes=names, verify=False)
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["id2label"]["7"] == "class 7" and config["label2id"]["class 0"] == 0
    names.write_text("a\nb\nc\n")
    with pytest.raises(ValueError, match=r"names.txt: 3 names .* model.num_classes=8"):
        export_hf.export(trained_run, tmp_path / "hf2", classes=names, verify=False)
    assert not (tmp_path / "hf2").exists()


def test_hf_processors_of_the_export_prepare_frames_as_the_run_does(trained_run, tmp_path):
    """AutoImageProcessor and AutoVideoProcessor read preprocessor_config.json into the run's evaluation protocol
    (resize 40, centre crop 32, the run's mean/std of [0, 1] pixels); the project's loader reads it back."""
    from models.recognition.scoring import RecognitionModel
    from models.recognition.pretrained import source_preprocessing

    out = export_hf.export(trained_run, tmp_path / "hf", verify=False)
    frames = torch.randint(0, 256, (4, 40, 40, 3), dtype=torch.uint8)  # (t h w c) at the resize size
    expected = RecognitionModel(trained_run).prepare_frames(frames.permute(3, 0, 1, 2)[None].float() / 255)
    expected = expected.permute(0, 2, 1, 3, 4)  # (1 t c h w), HF's layout
    image = transformers.AutoImageProcessor.from_pretrained(out)(list(frames.numpy()), return_tensors="pt")
    video = transformers.AutoVideoProcessor.from_pretrained(out)([frames.numpy()], return_tensors="pt")
    for pixels in (image.pixel_values, video.pixel_values):
        assert pixels.shape == (1, 4, 3, 32, 32)
        torch.testing.assert_close(pixels, expected, atol=1e-5, rtol=0)
    assert source_preprocessing(out) == {"mean": [0.1, 0.2, 0.3], "std": [0.5, 0.4, 0.3], "crop_size": 32,
                                         "resize_size": 40}
    assert json.loads((out / "preprocessor_config.json").read_text())["num_frames"] == 4


@pytest.mark.parametrize(("overrides", "message"), [
    (("experiment=mmnist_direction_divided",), "tubelet_size=2: HF TimeSformer embeds every frame alone"),
    (("~experiment", "model.net.attention_type=space_only"), "attention_type=space_only: HF's space_only returns"),
    (("experiment=mmnist_direction_vivit", "model.net.variant=3"),
     "variant=3: HF's VivitForVideoClassification is ViViT model 1"),
    (("~experiment", "model=frame_classifier"), "builds FrameClassifier; HF has"),
    (("experiment=mmnist_autoencoder",), "autoencoder run (model._target_="),
    (("experiment=mmnist_dit",), "diffusion run (model._target_="),
], ids=["timesformer-2-frame-tubelets", "space-only", "vivit-model3", "frame-classifier", "autoencoder", "dit"])
def test_runs_without_an_hf_counterpart_are_refused_and_nothing_is_written(overrides, message, tmp_path, capsys):
    run = _saved_run(tmp_path / "run", tmp_path / "no-data", *overrides, weights=False)
    out = tmp_path / "exports" / "hf"
    with pytest.raises(SystemExit) as exit_info:
        export_hf.main([str(run), str(out)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("export_hf.py: error: ") and message in error and error.count("\n") == 1
    assert not (tmp_path / "exports").exists()  # not even the parent folder


def test_a_wrong_key_map_fails_the_check_against_transformers_and_writes_nothing(trained_run, tmp_path,
                                                                                  monkeypatch):
    """The check (and the parity test above) can fail: LayerNorms written under each other's names load without a
    missing key, but the logits differ."""
    monkeypatch.setitem(export_hf.TIMESFORMER_BLOCK, "norm1", "layernorm_after")
    monkeypatch.setitem(export_hf.TIMESFORMER_BLOCK, "norm2", "layernorm_before")
    with pytest.raises(ValueError, match="differ from the run's by"):
        export_hf.export(trained_run, tmp_path / "hf")
    assert list(tmp_path.iterdir()) == []  # no output folder, no staging folder


def test_an_existing_output_folder_is_not_overwritten(trained_run, tmp_path):
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an empty folder"):
        export_hf.export(trained_run, out, verify=False)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
