"""A training run is a folder: ``config.yaml`` (the resolved config ``train.py`` saved), ``checkpoints/*.ckpt`` and
metric files. :func:`load_run` is the one way from a checkpoint (or a run folder) to its config, its kind, its
weights and its rebuilt network; everything that reads a run (``eval.py``, the metrics' classifiers, stage 1 for
stage 2, latent caching, sampling, ``predict.py``) goes through it.

The run's kind comes from the class its config builds (``model._target_``): importing that class runs its module,
where the LightningModule registered itself with :func:`register_run_kind`, and a subclass inherits the kind of its
registered base, so a renamed or subclassed LightningModule is still recognised, and a config that builds something
else is named in the error. This module therefore imports no LightningModule: they import it, to register.

Saved configs name classes by import path. When a module moves, the move is added to :data:`MODULE_MOVES`;
:data:`MOVED_MODULES` maps every old path to today's, and :func:`read_run_config` rewrites every ``_target_`` it
finds, so runs trained before the move still load, evaluate and resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from models.checkpointing import load_state_dict

CONFIG_FILE = "config.yaml"
NET_PREFIX = "net."  # the LightningModules keep the network as ``self.net``
KINDS = ("classifier", "autoencoder", "diffusion")
RUN_KINDS: dict[type, str] = {}  # LightningModule class -> the kind of run it trains; see register_run_kind

# Every move of a module, oldest first: {path before the move: path after}. A config can name a class or function of
# any module (``_target_``), so every module that moved is listed, not only the ones today's configs name.
MODULE_MOVES: tuple[dict[str, str], ...] = (
    # 2026-11: the recognition models moved from models/ into models/recognition/.
    {f"models.{name}": f"models.recognition.{name}"
     for name in ("timesformer", "vivit", "classifier", "frame_classifier", "pretrained", "inflate")},
    # 2026-12 (issue 23): LightningModules are named *_module, Lightning callbacks live in models/callbacks/, and the
    # frame-index sampling and the diffusion sampling loop have names that do not collide.
    {"models.recognition.classifier": "models.recognition.classifier_module",
     "models.diffusion.module": "models.diffusion.diffusion_module",
     "models.diffusion.sampling": "models.diffusion.denoising",
     "models.preemption": "models.callbacks.preemption",
     "models.diffusion.motion_curve": "models.callbacks.motion_curve",
     "models.diffusion.score_samples": "models.callbacks.score_samples",
     "data.sampling": "data.frame_sampling"},
)


def _compose(moves: tuple[dict[str, str], ...]) -> dict[str, str]:
    """Old module path -> today's, through every later move (``models.classifier`` -> ``models.recognition.classifier``
    -> ``models.recognition.classifier_module``)."""
    moved: dict[str, str] = {}
    for step in moves:
        moved = {old: step.get(new, new) for old, new in moved.items()}
        moved.update({old: new for old, new in step.items() if old not in moved})
    return moved


# Old module path -> today's, for ``_target_`` values of configs saved before a move.
MOVED_MODULES = _compose(MODULE_MOVES)


def migrate_target(target: str) -> str:
    """``target`` with a moved module's old path replaced by its new one (unchanged if nothing moved).

    >>> migrate_target("models.timesformer.TimeSformer")
    'models.recognition.timesformer.TimeSformer'
    """
    module, _, name = target.rpartition(".")
    return f"{MOVED_MODULES[module]}.{name}" if module in MOVED_MODULES else target


def _migrate(node):
    if isinstance(node, dict):
        return {key: migrate_target(value) if key == "_target_" and isinstance(value, str) else _migrate(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_migrate(value) for value in node]
    return node


def read_run_config(path: str | os.PathLike) -> DictConfig:
    """A run's saved ``config.yaml``, with the ``_target_`` paths of moved modules brought up to date
    (:data:`MOVED_MODULES`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    config = OmegaConf.load(path)
    return OmegaConf.create(_migrate(OmegaConf.to_container(config, resolve=False)))


def run_dir_of(ckpt: str | os.PathLike) -> Path:
    """The run folder of a checkpoint ``<run>/checkpoints/<name>.ckpt``."""
    return Path(ckpt).resolve().parent.parent


def register_run_kind(kind: str):
    """Class decorator: the LightningModule ``cls`` (and every subclass of it) trains runs of ``kind``.

    Each LightningModule registers itself where it is defined, ``@register_run_kind("classifier")`` above its class,
    so that :func:`load_run` knows it as soon as a run's config imports it, and this module imports none of them.

    Raises:
        ValueError: ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"run kind {kind!r} is none of {KINDS}")

    def register(cls: type) -> type:
        RUN_KINDS[cls] = kind
        return cls

    return register


def kind_of(cls: object) -> str | None:
    """The run kind of a LightningModule class: that of the first registered class in its MRO, or None."""
    for base in cls.__mro__ if isinstance(cls, type) else ():
        kind = RUN_KINDS.get(base)
        if kind is not None:
            return kind
    return None


def _kind(config: DictConfig, source: Path) -> str:
    target = OmegaConf.select(config, "model._target_")
    if not target:
        raise ValueError(f"{source}: its config.yaml has no model._target_; not a run of train.py")
    try:
        cls = get_class(str(target))  # imports the class's module, which registers its kind
    except Exception as error:  # noqa: BLE001 (Hydra raises several types for an unknown class)
        raise ValueError(f"{source}: model._target_={target} cannot be imported ({error})") from error
    kind = kind_of(cls)
    if kind is None:
        raise ValueError(f"{source}: model._target_={target} is none of the run kinds this framework trains "
                         f"({KINDS})")
    return kind


@dataclass(frozen=True)
class Run:
    """One training run on disk.

    Attributes:
        dir: the run folder.
        ckpt: the checkpoint file chosen.
        config: the run's resolved config (``<dir>/config.yaml``).
        kind: ``"classifier"`` (:class:`models.recognition.classifier_module.VideoClassifier`), ``"autoencoder"``
            (:class:`models.diffusion.autoencoder_module.AutoencoderModule`) or ``"diffusion"``
            (:class:`models.diffusion.diffusion_module.VideoDiffusion`).
    """

    dir: Path
    ckpt: Path
    config: DictConfig
    kind: str

    def expect(self, kind: str) -> Run:
        """Return ``self`` if the run is of ``kind``.

        Raises:
            ValueError: it is not; the message names the checkpoint, the kind found and the class its config builds.
        """
        if self.kind != kind:
            raise ValueError(f"{self.ckpt}: a {self.kind} run (model._target_={self.config.model._target_}), "
                             f"not a {kind} run")
        return self

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The checkpoint's full state dict, read with ``weights_only=True``."""
        return load_state_dict(self.ckpt)

    def net_weights(self, prefix: str = NET_PREFIX) -> dict[str, torch.Tensor]:
        """The network's weights: the ``prefix`` entries of the state dict with the prefix removed (``"net."``, or
        ``"ema."`` for a diffusion run's EMA copy).

        Raises:
            ValueError: the checkpoint holds no ``prefix`` entry.
        """
        state = self.state_dict()
        weights = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        if not weights:
            raise ValueError(f"{self.ckpt}: no '{prefix}*' weights (first keys: {list(state)[:3]})")
        return weights

    def build_net(self, prefix: str = NET_PREFIX) -> nn.Module:
        """``model.net`` of the config, with the checkpoint's ``prefix`` weights loaded strictly, in eval mode."""
        net = instantiate(self.config.model.net)
        net.load_state_dict(self.net_weights(prefix), strict=True)
        return net.eval()

    def build_module(self, **model_overrides) -> nn.Module:
        """The whole LightningModule of the config (``model``, patched by ``model_overrides``), weights loaded
        strictly, in eval mode."""
        model_cfg = OmegaConf.merge(self.config.model, model_overrides) if model_overrides else self.config.model
        module = instantiate(model_cfg)
        module.load_state_dict(self.state_dict(), strict=True)
        return module.eval()


def load_run(path: str | os.PathLike, checkpoint: str = "best.ckpt") -> Run:
    """Open a run from a checkpoint file ``<run>/checkpoints/<name>.ckpt`` or from a run folder.

    Args:
        path: the checkpoint, or the run folder (then ``checkpoints/<checkpoint>`` is used).
        checkpoint: file name used when ``path`` is a folder.

    Returns:
        The :class:`Run`.

    Raises:
        FileNotFoundError: the checkpoint or the run's ``config.yaml`` is missing (the message names the path).
        ValueError: the config builds no model class this framework trains.
    """
    path = Path(path)
    ckpt = path / "checkpoints" / checkpoint if path.is_dir() else path
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    folder = run_dir_of(ckpt)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: a checkpoint is read with the config.yaml that train.py "
                                f"saved in its run folder (<run>/config.yaml beside <run>/checkpoints/)")
    config = read_run_config(config_path)
    return Run(dir=folder, ckpt=ckpt, config=config, kind=_kind(config, ckpt))
