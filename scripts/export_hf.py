"""Export a trained TimeSformer or ViViT run as a Hugging Face ``save_pretrained`` folder.

    python scripts/export_hf.py outputs/demo/divided exports/divided
    python scripts/export_hf.py outputs/vivit/checkpoints/last.ckpt exports/vivit --classes my_classes.txt

OUT receives what ``transformers`` reads back with ``TimesformerForVideoClassification.from_pretrained(OUT)`` or
``VivitForVideoClassification.from_pretrained(OUT)``:

* ``config.json``: the architecture, and ``id2label``/``label2id`` with the run's class names when they are found
  (``--classes``, else the run's ``data.classes``, ``classes.txt`` in ``data.root``, or ``classes_<task>.txt`` beside
  its list files, as :func:`data.annotations.find_class_names` finds them; else ``LABEL_<k>``);
* ``model.safetensors``: the weights under HF's names, the inverse of the key maps in
  :mod:`models.recognition.pretrained` (``blocks.i.temporal_fc`` -> ``timesformer.encoder.layer.i.temporal_dense``;
  ViViT's fused ``qkv`` split into the ``query``/``key``/``value`` of HF's checkpoint files);
* ``preprocessor_config.json``: the run's evaluation protocol (short side resized to ``data.resize_size``, centre crop
  ``data.crop_size``, [0, 1] pixels normalised by ``data.mean``/``data.std``, ``num_frames``) for
  ``VideoMAEImageProcessor``, which ``AutoImageProcessor`` loads and ``AutoVideoProcessor`` turns into
  ``VideoMAEVideoProcessor``. ViViT gets it too: ``VivitVideoProcessor`` always maps pixels to [-1, 1] (it ignores
  ``offset``), so with it the run's mean/std would be applied to the wrong range. The frame stride is not recorded
  (HF processors take the frames they are given).

Only the architectures HF implements with the same forward are exported: TimeSformer with per-frame patches
(``tubelet_size: 1``) and ``divided_space_time`` or ``joint_space_time`` attention, and ViViT model 1
(``variant: 1``). Anything else (2-frame tubelets, ``space_only``, ViViT models 2-4, another net, a DiT or
autoencoder run) is refused with a message naming what differs, before anything is written. With ``transformers``
installed the folder is loaded back and its logits compared with the run's on a random clip (max abs diff <= 1e-4)
before it is moved to OUT; a failed check writes nothing either.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from data.annotations import CLASSES_FILE, find_class_names, read_classes
from models.recognition.pretrained import HF_BLOCK, HF_TOP, HF_VIVIT_BLOCK, HF_VIVIT_TOP, PREPROCESSOR_FILE
from models.recognition.timesformer import TimeSformer
from models.recognition.vivit import ViViT
from models.run import load_run

# Our key -> HF's, the inverse of the loader's maps (pretrained.py), so export and import cannot drift apart.
# Block maps: blocks.{i}.<ours> -> <prefix>.encoder.layer.{i}.<HF's>.
TIMESFORMER_TOP = {ours: hf for hf, ours in HF_TOP.items()}
TIMESFORMER_BLOCK = {ours: hf for hf, ours in HF_BLOCK.items()}
VIVIT_TOP = {ours: hf for hf, ours in HF_VIVIT_TOP.items()}
VIVIT_BLOCK = {ours: hf for hf, ours in HF_VIVIT_BLOCK.items()}  # attn.qkv is split into query, key, value
ARCHITECTURES = {TimeSformer: ("timesformer", "TimesformerForVideoClassification"),
                 ViViT: ("vivit", "VivitForVideoClassification")}
TOLERANCE = 1e-4  # max abs logit difference accepted by the check against transformers


class UnsupportedRun(ValueError):
    """The run has no HF counterpart with the same forward; the message names what differs."""


def image_size(net: TimeSformer | ViViT) -> int:
    """The frame side (pixels) ``net`` was built for: its patch grid times the patch size."""
    side = net.grid_size[0] if isinstance(net, TimeSformer) else round(net.num_patches ** 0.5)
    return side * net.patch_embed.patch_size


def check_supported(run, net: torch.nn.Module) -> str:
    """The HF ``model_type`` that computes exactly what ``net`` computes.

    Raises:
        UnsupportedRun: a run that is not a clip classifier, a net other than :class:`TimeSformer` or
            :class:`ViViT`, or a layout HF does not implement (named in the message).
    """
    target = run.config.model.get("_target_")
    if run.kind != "classifier":
        raise UnsupportedRun(f"{run.ckpt}: {run.kind} run (model._target_={target}); only clip classifiers with a "
                             "TimeSformer or ViViT net have an HF counterpart")
    if type(net) not in ARCHITECTURES:  # exact type: a subclass may change the forward
        raise UnsupportedRun(f"{run.ckpt}: model.net._target_={run.config.model.net.get('_target_')} builds "
                             f"{type(net).__name__}; HF has TimesformerForVideoClassification and "
                             "VivitForVideoClassification only")
    if isinstance(net, TimeSformer):
        if net.patch_embed.tubelet_size != 1:
            raise UnsupportedRun(f"{run.ckpt}: model.net.tubelet_size={net.patch_embed.tubelet_size}: HF TimeSformer "
                                 "embeds every frame alone (Conv2d patches); tubelets of several frames have no HF "
                                 "counterpart")
        if net.attention_type == "space_only":
            raise UnsupportedRun(f"{run.ckpt}: model.net.attention_type=space_only: HF's space_only returns one logit "
                                 "row per frame (b·t, k), where this model averages the frames' CLS tokens before the "
                                 "final norm")
    elif net.variant != 1:
        raise UnsupportedRun(f"{run.ckpt}: model.net.variant={net.variant}: HF's VivitForVideoClassification is ViViT "
                             "model 1 (joint spatio-temporal attention) only")
    if not isinstance(net.head, torch.nn.Linear):
        raise UnsupportedRun(f"{run.ckpt}: model.net.num_classes={net.num_classes}: no classifier head to export")
    crop = int(run.config.data.crop_size)
    if crop != image_size(net):
        raise UnsupportedRun(f"{run.dir / 'config.yaml'}: data.crop_size={crop} but the net's img_size is "
                             f"{image_size(net)}; an HF config has one image_size for both")
    return ARCHITECTURES[type(net)][0]


def hf_state_dict(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s weights under the names of HF's checkpoint files (fresh contiguous tensors).

    Raises:
        ValueError: a key of ``net`` that the maps do not cover (named).
    """
    timesformer = isinstance(net, TimeSformer)
    top, block, prefix = ((TIMESFORMER_TOP, TIMESFORMER_BLOCK, "timesformer") if timesformer
                          else (VIVIT_TOP, VIVIT_BLOCK, "vivit"))
    state, unmapped = {}, []
    for key, value in net.state_dict().items():
        parts = key.split(".")
        name, kind = ".".join(parts[2:-1]), parts[-1]
        if key in top:
            state[top[key]] = value
        elif parts[0] == "blocks" and name in block:
            state[f"{prefix}.encoder.layer.{parts[1]}.{block[name]}.{kind}"] = value
        elif parts[0] == "blocks" and name == "attn.qkv" and not timesformer:
            for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                state[f"vivit.encoder.layer.{parts[1]}.attention.attention.{part}.{kind}"] = chunk
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{type(net).__name__} keys with no HF counterpart: {unmapped[:8]}")
    patch = f"{prefix}.embeddings.patch_embeddings.projection.weight"
    if not timesformer and state[patch].ndim == 4:  # tubelet_size 1: our Conv2d (d c p p) -> HF's Conv3d (d c 1 p p)
        state[patch] = state[patch][:, :, None]
    return {key: value.detach().clone().contiguous() for key, value in state.items()}


def class_names(run, classes_file: str | Path | None = None) -> list[str] | None:
    """The run's class names in label order, or None when none are found.

    Looked for in ``classes_file``, else the first that exists of: the run's ``data.classes``,
    ``<data.root>/classes.txt``, the ``classes_<task>.txt``/``classes.txt`` beside its train/val/test list files
    (:func:`data.annotations.find_class_names`).

    Raises:
        FileNotFoundError: ``classes_file`` does not exist.
        ValueError: the names found are not ``model.num_classes`` distinct names (the file is named).
    """
    data, num_classes = run.config.data, int(run.config.model.num_classes)
    root = Path(str(data.get("root", ".")))
    if classes_file is not None:
        names, source = read_classes(classes_file), str(classes_file)
    else:
        files = [root / str(data.classes)] if data.get("classes") else []
        found = [(read_classes(path), str(path)) for path in [*files, root / CLASSES_FILE] if path.is_file()]
        lists = [root / str(data[split]) for split in ("train", "val", "test") if data.get(split)]
        found += [(names, f"the classes file beside {path}") for path in lists
                  if path.is_file() and (names := find_class_names(path))]
        if not found:
            return None
        names, source = found[0]
    if len(names) != num_classes or len(set(names)) != len(names):
        raise ValueError(f"{source}: {len(names)} names ({len(set(names))} distinct) for model.num_classes="
                         f"{num_classes}")
    return names


def hf_config(net: torch.nn.Module, net_cfg: DictConfig, names: list[str] | None) -> dict:
    """``config.json`` of the HF model equal to ``net`` (sizes read from its modules), with ``id2label``.

    Dropout rates are carried over (they act in training only); stochastic depth is not: transformers 5 types
    ``TimesformerConfig.drop_path_rate`` as an int and refuses to load 0.1.
    """
    block = net.blocks[0]
    names = names or [f"LABEL_{k}" for k in range(net.head.out_features)]
    common = dict(
        num_channels=net.patch_embed.in_chans, hidden_size=net.embed_dim, num_hidden_layers=len(net.blocks),
        num_attention_heads=block.attn.num_heads, intermediate_size=block.mlp.fc1.out_features,
        qkv_bias=block.attn.qkv.bias is not None, layer_norm_eps=net.norm.eps, initializer_range=0.02,
        hidden_dropout_prob=float(net_cfg.get("drop_rate", 0.0)),
        attention_probs_dropout_prob=float(net_cfg.get("attn_drop_rate", 0.0)),
        id2label={str(k): name for k, name in enumerate(names)}, label2id={name: k for k, name in enumerate(names)})
    patch = net.patch_embed.patch_size
    if isinstance(net, TimeSformer):
        return dict(architectures=["TimesformerForVideoClassification"], model_type="timesformer",
                    image_size=image_size(net), patch_size=patch, num_frames=net.time_embed.shape[1],
                    hidden_act="gelu", attention_type=net.attention_type, **common)
    tubelet = net.patch_embed.tubelet_size
    act = "gelu_pytorch_tanh" if getattr(block.mlp.act, "approximate", "none") == "tanh" else "gelu"
    return dict(architectures=["VivitForVideoClassification"], model_type="vivit",
                image_size=image_size(net), tubelet_size=[tubelet, patch, patch],
                num_frames=net.num_tubelets * tubelet, hidden_act=act, **common)


def preprocessor_config(data: DictConfig, num_frames: int) -> dict:
    """``preprocessor_config.json`` for ``VideoMAEImageProcessor``/``VideoMAEVideoProcessor``: the run's evaluation
    resize, centre crop and normalisation of [0, 1] pixels (uint8 / 255)."""
    crop = int(data.crop_size)
    return {"image_processor_type": "VideoMAEImageProcessor", "do_resize": True,
            "size": {"shortest_edge": int(data.get("resize_size") or crop)}, "resample": 2,  # bilinear
            "do_center_crop": True, "crop_size": {"height": crop, "width": crop},
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": [float(v) for v in data.mean], "image_std": [float(v) for v in data.std],
            "num_frames": num_frames, "do_sample_frames": False}


def check_against_transformers(folder: Path, net: torch.nn.Module, model_type: str) -> float | None:
    """Load ``folder`` with transformers and compare its logits with ``net``'s on a random clip (eval mode).

    Returns:
        The max abs logit difference, or None when transformers is not installed.

    Raises:
        ValueError: HF reports missing/unexpected keys, or the logits differ by more than :data:`TOLERANCE`.
    """
    try:
        import transformers
    except ImportError:
        return None
    cls = getattr(transformers, ARCHITECTURES[type(net)][1])
    hf, info = cls.from_pretrained(folder, output_loading_info=True)
    problems = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        raise ValueError(f"transformers {transformers.__version__} does not load the export as {model_type}: "
                         f"{problems}")
    config = json.loads((folder / "config.json").read_text())
    size = config["image_size"]
    video = torch.randn(1, config["num_channels"], config["num_frames"], size, size,
                        generator=torch.Generator().manual_seed(0))  # (b c t h w)
    with torch.no_grad():
        diff = (net.eval()(video) - hf.eval()(pixel_values=video.transpose(1, 2)).logits).abs().max().item()
    if not diff <= TOLERANCE:
        raise ValueError(f"HF's {cls.__name__} gives logits that differ from the run's by {diff:.3g} (max abs) > "
                         f"{TOLERANCE}: its forward is not this model's")
    return diff


def export(source: str | Path, out: str | Path, checkpoint: str = "best.ckpt", classes: str | Path | None = None,
           verify: bool = True) -> Path:
    """Write the run at ``source`` (a run folder or a checkpoint) as an HF folder ``out``.

    Args:
        source: ``<run>`` (uses ``checkpoints/<checkpoint>``) or ``<run>/checkpoints/<name>.ckpt``.
        out: the folder to create; it must not exist or be empty.
        checkpoint: file name used when ``source`` is a folder.
        classes: a file of class names, one per line, instead of the run's.
        verify: compare the export's logits with the run's through transformers (when installed).

    Returns:
        ``out``. On any error nothing is left at ``out`` (files are written beside it and moved at the end).

    Raises:
        FileNotFoundError: the checkpoint, config.yaml or ``classes`` is missing.
        UnsupportedRun: the run has no HF counterpart (see :func:`check_supported`).
        ValueError: ``out`` is not empty, weights that do not fit the net, class names that do not fit, or a
            failed check against transformers.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder: choose a new output folder")
    run = load_run(source, checkpoint)
    net = instantiate(run.config.model.net) if run.kind == "classifier" else None
    model_type = check_supported(run, net)
    net.load_state_dict(run.net_weights(), strict=True)
    net.eval()
    names = class_names(run, classes)
    state = hf_state_dict(net)
    config = hf_config(net, run.config.model.net, names)

    from safetensors.torch import save_file

    created = [p for p in reversed(out.parents) if not p.exists()]  # removed again if the export fails
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(state, staging / "model.safetensors", metadata={"format": "pt"})
        (staging / PREPROCESSOR_FILE).write_text(
            json.dumps(preprocessor_config(run.config.data, config["num_frames"]), indent=2) + "\n")
        diff = check_against_transformers(staging, net, model_type) if verify else None
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):  # something else wrote there meanwhile: keep it
                folder.rmdir()
        raise
    checked = (f"logits match transformers to {diff:.1e}" if diff is not None else
               "not checked against transformers" + ("" if not verify else " (not installed)"))
    print(f"{out}: {config['architectures'][0]} from {run.ckpt} ({len(config['id2label'])} classes"
          f"{'' if names else ', no class names found'}; {checked})")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", metavar="RUN",
                        help="a run folder of train.py (uses checkpoints/best.ckpt) or a checkpoint file")
    parser.add_argument("out", metavar="OUT", help="the HF folder to create (must not exist, or be empty)")
    parser.add_argument("--checkpoint", default="best.ckpt",
                        help="checkpoint file name when RUN is a folder (default: %(default)s)")
    parser.add_argument("--classes", help="class names, one per line (default: the run's classes file, or the "
                                          "classes_<task>.txt / classes.txt beside its list files)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip loading the export with transformers and comparing its logits with the run's")
    args = parser.parse_args(argv)
    try:
        export(args.run, args.out, args.checkpoint, args.classes, verify=not args.no_verify)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"export_hf.py: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
