"""Run folders saved before a module moved: their ``_target_`` paths are migrated, so they load and resume."""

from __future__ import annotations

import importlib

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from models.recognition.scoring import RecognitionModel
from models.run import (MODULE_MOVES, MOVED_MODULES, RUN_KINDS, kind_of, load_run, migrate_target,
                        read_run_config, register_run_kind)
from tests.conftest import compose_config
from tests.test_metrics_recognition import CROP, NUM_CLASSES, NUM_FRAMES, make_run
from train import auto_resume_path

ERAS = range(len(MODULE_MOVES))  # era k: saved before move k of MODULE_MOVES (and after the earlier ones)


def path_in_era(module: str, era: int) -> str:
    """Today's module path as a config saved before move ``era`` named it."""
    for step in reversed(MODULE_MOVES[era:]):
        module = {new: old for old, new in step.items()}.get(module, module)
    return module


def as_saved_before(config_path, era: int = 0) -> int:
    """Rewrite a saved config.yaml's ``_target_`` values to the module paths before move ``era``; return how many
    changed."""
    text = config_path.read_text()
    changed = 0
    for new in set(MOVED_MODULES.values()):
        old = path_in_era(new, era)
        if old != new:
            changed += text.count(f"_target_: {new}.")
            text = text.replace(f"_target_: {new}.", f"_target_: {old}.")
    config_path.write_text(text)
    return changed


def test_every_moved_module_exists_at_its_new_path_and_not_at_its_old_one():
    for old, new in MOVED_MODULES.items():
        importlib.import_module(new)
        assert importlib.util.find_spec(old) is None, f"{old} still exists: drop it from MODULE_MOVES or the file"


def test_migrate_target_rewrites_moved_modules_only():
    assert migrate_target("models.timesformer.TimeSformer") == "models.recognition.timesformer.TimeSformer"
    for before in ("models.classifier.VideoClassifier", "models.recognition.classifier.VideoClassifier"):
        assert migrate_target(before) == "models.recognition.classifier_module.VideoClassifier"  # through both moves
    assert migrate_target("models.diffusion.module.VideoDiffusion") == (
        "models.diffusion.diffusion_module.VideoDiffusion")
    assert migrate_target("models.preemption.SaveOnPreemption") == "models.callbacks.preemption.SaveOnPreemption"
    assert migrate_target("models.diffusion.motion_curve.MotionCurve") == "models.callbacks.motion_curve.MotionCurve"
    for unchanged in ("models.diffusion.diffusion_module.VideoDiffusion", "torch.optim.AdamW",
                      "models.recognition.vivit.ViViT", "models.optim.warmup_cosine", "data.latents.LatentDataModule"):
        assert migrate_target(unchanged) == unchanged


@pytest.mark.parametrize("era", ERAS)
def test_a_run_saved_before_the_move_loads_with_the_same_logits(tmp_path, era):
    net = make_run(tmp_path / "new")
    make_run(tmp_path / "old")
    assert as_saved_before(tmp_path / "old" / "config.yaml", era) >= 2  # the LightningModule and a callback or net
    assert path_in_era("models.recognition.classifier_module", era) in (tmp_path / "old" / "config.yaml").read_text()

    run = load_run(tmp_path / "old")
    assert run.kind == "classifier"
    assert run.config.model._target_ == "models.recognition.classifier_module.VideoClassifier"
    assert run.config.model.net._target_ == "models.recognition.timesformer.TimeSformer"
    video = torch.rand(2, 3, NUM_FRAMES, CROP, CROP)
    with torch.no_grad():
        torch.testing.assert_close(run.build_net()(video), net(video), rtol=0, atol=0)
    model = RecognitionModel(tmp_path / "old" / "checkpoints" / "best.ckpt")
    assert model.num_classes == NUM_CLASSES


@pytest.mark.parametrize("era", ERAS)
def test_read_run_config_keeps_every_other_value(tmp_path, era):
    make_run(tmp_path / "run")
    saved = tmp_path / "run" / "config.yaml"
    current = yaml.safe_load(saved.read_text())
    as_saved_before(saved, era)
    assert OmegaConf.to_container(read_run_config(saved)) == current


@pytest.mark.parametrize("overrides", [["experiment=mmnist_dit"], ["experiment=mmnist_autoencoder"],
                                       ["experiment=mmnist_frame_digit"], ["model=vivit"], ["trainer=fsdp"]])
def test_every_target_a_saved_config_names_is_migrated_to_a_class_that_exists(tmp_path, overrides):
    """Generation runs too: their LightningModule, net, datamodule and callbacks all moved or may move."""
    cfg = compose_config("train", [*overrides, f"paths.output_dir={tmp_path}"])
    saved = tmp_path / "config.yaml"
    OmegaConf.save(cfg, saved, resolve=True)
    current = yaml.safe_load(saved.read_text())
    assert as_saved_before(saved, 0) >= 1
    migrated = read_run_config(saved)
    assert OmegaConf.to_container(migrated) == current
    targets = [value for key, value in _items(OmegaConf.to_container(migrated)) if key == "_target_"]
    assert targets
    for target in targets:
        module, _, name = target.rpartition(".")
        assert hasattr(importlib.import_module(module), name), target


def _items(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _items(value)
    elif isinstance(node, list):
        for value in node:
            yield from _items(value)


@pytest.mark.parametrize("era", ERAS)
def test_resume_auto_accepts_a_run_saved_before_the_move(tiny_mmnist, tmp_path, era):
    run = tmp_path / "run"
    cfg = compose_config("train", [f"data.root={tiny_mmnist}", "data.generate=null", f"paths.output_dir={run}"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # only its presence matters to the config check
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    assert as_saved_before(run / "config.yaml", era) >= 2
    assert auto_resume_path(cfg) == str(run / "checkpoints" / "last.ckpt")


def test_every_run_kind_is_registered_by_its_own_module_and_inherited_by_subclasses():
    from models.diffusion.autoencoder_module import AutoencoderModule
    from models.diffusion.diffusion_module import VideoDiffusion
    from models.recognition.classifier_module import VideoClassifier

    assert [kind_of(cls) for cls in (VideoClassifier, AutoencoderModule, VideoDiffusion)] == [
        "classifier", "autoencoder", "diffusion"]
    assert kind_of(type("MyClassifier", (VideoClassifier,), {})) == "classifier"
    assert kind_of(torch.nn.Linear) is None and kind_of("not a class") is None
    with pytest.raises(ValueError, match="'segmenter' is none of"):
        register_run_kind("segmenter")
    assert set(RUN_KINDS.values()) <= {"classifier", "autoencoder", "diffusion"}


def test_resume_auto_accepts_keys_added_since_the_run_was_saved_unless_the_command_sets_them(tiny_mmnist, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config("train", [f"data.root={tiny_mmnist}", "data.generate=null", f"paths.output_dir={run}"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    saved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    del saved.model["optimizer"]  # as if the code gained model.optimizer after this run was saved
    saved.trainer.max_epochs = int(cfg.trainer.max_epochs) + 1  # ... and a real difference, checked below
    OmegaConf.save(saved, run / "config.yaml")
    with pytest.raises(ValueError, match=r"different config \(trainer.max_epochs\)"):
        auto_resume_path(cfg, overridden=set())
    saved.trainer.max_epochs = cfg.trainer.max_epochs
    OmegaConf.save(saved, run / "config.yaml")
    assert auto_resume_path(cfg, overridden=set()) == str(run / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=r"different config \(model.optimizer\)"):
        auto_resume_path(cfg, overridden={"model.optimizer.lr"})
