"""Every config composes, resolves and instantiates; bad values raise ValueError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from tests.conftest import CONFIG_DIR, compose_config

EXPERIMENTS = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [
    (group, p.stem)
    for group in ("data", "logger", "trainer", "debug", "callbacks", "model")
    for p in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))
]
REQUIRED = ["data.root=/tmp/videos", "data.num_classes=5"]


@pytest.mark.parametrize("group, option", GROUP_OPTIONS)
def test_every_group_option_composes_and_resolves(group, option, tmp_path):
    overrides = [f"{group}={option}", f"paths.output_dir={tmp_path}"]
    if (group, option) == ("data", "videos"):
        overrides += REQUIRED
    cfg = compose_config("train", overrides)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds_its_model_and_data(experiment, tmp_path):
    cfg = compose_config("train", [f"experiment={experiment}", f"paths.output_dir={tmp_path}"])
    model = instantiate(cfg.model)
    datamodule = instantiate(cfg.data)
    assert cfg.run_name == experiment
    if "attention_type" in cfg.model.net:  # recognition experiments
        assert model.net.attention_type == cfg.model.net.attention_type
        assert datamodule.num_classes == model.net.num_classes
    elif "layout" in cfg.model.net:  # video diffusion: the DiT's layout and class count come from the config
        classes = dict(cfg.model.num_classes) if cfg.model.get("conditioning") else datamodule.num_classes
        assert model.net.layout == cfg.model.net.layout and model.net.null_label == classes


def test_eval_config_needs_a_checkpoint_and_takes_run_and_trainer_overrides(tmp_path):
    cfg = compose_config("eval", [f"paths.output_dir={tmp_path}"])
    with pytest.raises(MissingMandatoryValue, match="ckpt_path"):
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    cfg = compose_config("eval", ["ckpt_path=x.ckpt", f"paths.output_dir={tmp_path}", "+run_overrides.data.num_workers=0",
                                  "trainer.devices=2", "+trainer.strategy=ddp"])
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["run_overrides"] == {"data": {"num_workers": 0}}
    assert resolved["trainer"] == {"devices": 2, "strategy": "ddp"}


def test_direction_tasks_never_flip():
    for experiment in EXPERIMENTS:  # a flip turns E into W, for recognition and generation alike
        cfg = compose_config("train", [f"experiment={experiment}", "paths.output_dir=/tmp"])
        assert cfg.data.get("flip", False) is False, experiment  # latent caches have no flip at all


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.net.attention_type=divided", "attention_type='divided'"),
        ("data.crop_size=60", "img_size=60 is not divisible by patch_size=16"),
        ("data.num_frames=0", "num_frames=0"),
        ("data.frame_stride=0", "data.frame_stride=0"),
        ("data.train_scale=[40,48]", "crop_size=64"),
        ("model.label_smoothing=1.5", "label_smoothing=1.5"),
        ("model.net.num_heads=5", "num_heads=5"),
    ],
)
def test_bad_config_values_raise_value_error_naming_the_field(override, message, tmp_path):
    cfg = compose_config("train", [override, f"paths.output_dir={tmp_path}"])
    with pytest.raises(Exception) as err:
        instantiate(cfg.data)
        instantiate(cfg.model)
    cause = err.value
    while not isinstance(cause, ValueError) and cause.__cause__ is not None:  # Hydra wraps instantiation errors
        cause = cause.__cause__
    assert isinstance(cause, ValueError), repr(err.value)
    assert message in str(cause)
