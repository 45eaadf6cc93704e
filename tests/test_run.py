"""Run folders saved before a module moved: their ``_target_`` paths are migrated, so they load and resume."""

from __future__ import annotations

import importlib

import torch
import yaml
from omegaconf import OmegaConf

from models.metrics.recognition import RecognitionModel
from models.run import MOVED_MODULES, load_run, migrate_target, read_run_config
from tests.conftest import compose_config
from tests.test_metrics_recognition import CROP, NUM_CLASSES, NUM_FRAMES, make_run
from train import auto_resume_path


def as_before_the_move(config_path) -> int:
    """Rewrite a saved config.yaml's ``_target_`` values to the pre-move module paths; return how many changed."""
    old_of = {new: old for old, new in MOVED_MODULES.items()}
    text = config_path.read_text()
    changed = 0
    for new, old in old_of.items():
        changed += text.count(f"_target_: {new}.")
        text = text.replace(f"_target_: {new}.", f"_target_: {old}.")
    config_path.write_text(text)
    return changed


def test_every_moved_module_exists_at_its_new_path_and_not_at_its_old_one():
    for old, new in MOVED_MODULES.items():
        importlib.import_module(new)
        assert importlib.util.find_spec(old) is None, f"{old} still exists: drop it from MOVED_MODULES or the file"


def test_migrate_target_rewrites_moved_modules_only():
    assert migrate_target("models.timesformer.TimeSformer") == "models.recognition.timesformer.TimeSformer"
    assert migrate_target("models.classifier.VideoClassifier") == "models.recognition.classifier.VideoClassifier"
    for unchanged in ("models.diffusion.module.VideoDiffusion", "torch.optim.AdamW",
                      "models.recognition.vivit.ViViT", "models.metrics.recognition.RecognitionModel"):
        assert migrate_target(unchanged) == unchanged


def test_a_run_saved_before_the_move_loads_with_the_same_logits(tmp_path):
    net = make_run(tmp_path / "new")
    make_run(tmp_path / "old")
    assert as_before_the_move(tmp_path / "old" / "config.yaml") >= 2  # the LightningModule and its network
    assert "models.timesformer.TimeSformer" in (tmp_path / "old" / "config.yaml").read_text()

    run = load_run(tmp_path / "old")
    assert run.kind == "classifier"
    assert run.config.model._target_ == "models.recognition.classifier.VideoClassifier"
    assert run.config.model.net._target_ == "models.recognition.timesformer.TimeSformer"
    video = torch.rand(2, 3, NUM_FRAMES, CROP, CROP)
    with torch.no_grad():
        torch.testing.assert_close(run.build_net()(video), net(video), rtol=0, atol=0)
    model = RecognitionModel(tmp_path / "old" / "checkpoints" / "best.ckpt")
    assert model.num_classes == NUM_CLASSES


def test_read_run_config_keeps_every_other_value(tmp_path):
    make_run(tmp_path / "run")
    saved = tmp_path / "run" / "config.yaml"
    current = yaml.safe_load(saved.read_text())
    as_before_the_move(saved)
    assert OmegaConf.to_container(read_run_config(saved)) == current


def test_resume_auto_accepts_a_run_saved_before_the_move(tiny_mmnist, tmp_path):
    run = tmp_path / "run"
    cfg = compose_config("train", [f"data.root={tiny_mmnist}", "data.generate=null", f"paths.output_dir={run}"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")  # only its presence matters to the config check
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    assert as_before_the_move(run / "config.yaml") >= 2
    assert auto_resume_path(cfg) == str(run / "checkpoints" / "last.ckpt")
