"""Load published TimeSformer and ViViT weights into this project's models, by key maps that account for every key.

:func:`load_pretrained` is the entry point. Sources understood so far (timm ImageNet inflation is not wired yet):

* an **HF TimeSformer folder** as ``save_pretrained`` writes it (``config.json`` with ``model_type: timesformer`` and
  ``model.safetensors`` or ``pytorch_model.bin``): HF's ``TimesformerForVideoClassification`` is the official model
  renamed (``timesformer.encoder.layer.i.temporal_dense`` is ``blocks.i.temporal_fc``, ...; see :data:`HF_BLOCK`);
* an **HF ViViT folder** (``model_type: vivit``): HF's ``VivitForVideoClassification`` is ViViT model 1; its files keep
  the 4.x key names (separate ``query``/``key``/``value``, fused here into ``qkv``) and ``gelu_fast`` activations;
* an **official facebookresearch/TimeSformer checkpoint** (``.pyth``/``.pth``: ``{"model_state": {"model.<key>": ...}}``),
  whose names this project keeps, so it loads by stripping the ``model.`` prefix.

Every file is read with ``safetensors`` or ``torch.load(weights_only=True)``: nothing unpickles code. A key that does
not map, or a model key that nothing fills, is an error that names the keys; nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from models.recognition.timesformer import TimeSformer
from models.recognition.vivit import ViViT

HF_TOP = {
    "timesformer.embeddings.cls_token": "cls_token",
    "timesformer.embeddings.position_embeddings": "pos_embed",
    "timesformer.embeddings.time_embeddings": "time_embed",
    "timesformer.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "timesformer.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "timesformer.layernorm.weight": "norm.weight",
    "timesformer.layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}
HF_BLOCK = {  # timesformer.encoder.layer.{i}.<HF name> -> blocks.{i}.<our (official) name>
    "layernorm_before": "norm1",
    "attention.attention.qkv": "attn.qkv",
    "attention.output.dense": "attn.proj",
    "temporal_layernorm": "temporal_norm1",
    "temporal_attention.attention.qkv": "temporal_attn.qkv",
    "temporal_attention.output.dense": "temporal_attn.proj",
    "temporal_dense": "temporal_fc",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_HF_LAYER = re.compile(r"^timesformer\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def hf_to_ours(key: str) -> str:
    """Our name of an HF TimeSformer state-dict key.

    Raises:
        KeyError: the key is not part of the HF model this map describes.
    """
    if key in HF_TOP:
        return HF_TOP[key]
    match = _HF_LAYER.match(key)
    if match and match.group(2) in HF_BLOCK:
        return f"blocks.{match.group(1)}.{HF_BLOCK[match.group(2)]}.{match.group(3)}"
    raise KeyError(key)


_OURS_TOP = {ours: hf for hf, ours in HF_TOP.items()}
_OURS_BLOCK = {ours: hf for hf, ours in HF_BLOCK.items()}
_OUR_LAYER = re.compile(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$")


def ours_to_hf(key: str) -> str:
    """The inverse of :func:`hf_to_ours` (raises ``KeyError`` the same way)."""
    if key in _OURS_TOP:
        return _OURS_TOP[key]
    match = _OUR_LAYER.match(key)
    if match and match.group(2) in _OURS_BLOCK:
        return f"timesformer.encoder.layer.{match.group(1)}.{_OURS_BLOCK[match.group(2)]}.{match.group(3)}"
    raise KeyError(key)


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(folder / "model.safetensors")
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder}: no model.safetensors or pytorch_model.bin")


def load_strictly(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> torch.nn.Module:
    """Load ``state`` into ``model``; every model key must be filled and every state key used.

    Raises:
        ValueError: keys are missing or unexpected, or shapes differ (the message names them).
    """
    expected = model.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    shapes = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{source} does not fit {type(model).__name__}: missing {missing[:8]}, unexpected "
                         f"{unexpected[:8]}, shape mismatches {shapes[:8]}")
    model.load_state_dict(state, strict=True)
    return model


def timesformer_from_hf(folder: str | os.PathLike) -> TimeSformer:
    """Our :class:`TimeSformer` with the weights of an HF ``TimesformerForVideoClassification`` folder.

    Args:
        folder: a local folder as ``save_pretrained`` writes it (``config.json`` + weights); nothing is downloaded.

    Returns:
        The model in eval mode. It takes (b c t h w) clips normalised as the checkpoint expects (HF takes
        (b t c h w): permute before calling) and returns logits (b num_labels), equal to HF's in fp32 for
        ``divided_space_time`` and ``joint_space_time``. (HF's ``space_only`` returns per-frame logits (b·t, k); ours
        averages the frames' CLS tokens before the final norm, as the official code does.)

    Raises:
        FileNotFoundError: no ``config.json`` or weights in ``folder``.
        ValueError: the folder is not a TimeSformer, a key does not map, or a shape differs (named in the message).
    """
    folder = Path(folder)
    config = _hf_config(folder, "timesformer")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"{folder}: hidden_act={config['hidden_act']!r}; this TimeSformer uses exact GELU")
    num_classes = len(config.get("id2label", {})) or int(config.get("num_labels", 0))
    model = TimeSformer(
        img_size=config["image_size"], patch_size=config["patch_size"], in_chans=config.get("num_channels", 3),
        num_classes=num_classes, num_frames=config["num_frames"], embed_dim=config["hidden_size"],
        depth=config["num_hidden_layers"], num_heads=config["num_attention_heads"],
        mlp_ratio=config["intermediate_size"] / config["hidden_size"], qkv_bias=config.get("qkv_bias", True),
        drop_path_rate=0.0, attention_type=config.get("attention_type", "divided_space_time"))
    state, unmapped = {}, []
    for key, value in _read_weights(folder).items():
        try:
            state[hf_to_ours(key)] = value
        except KeyError:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{folder}: HF keys with no TimeSformer counterpart: {unmapped[:8]}")
    return load_strictly(model, state, str(folder)).eval()


HF_VIVIT_TOP = {
    "vivit.embeddings.cls_token": "cls_token",
    "vivit.embeddings.position_embeddings": "pos_embed",
    "vivit.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "vivit.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "vivit.layernorm.weight": "norm.weight",
    "vivit.layernorm.bias": "norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}
HF_VIVIT_BLOCK = {  # vivit.encoder.layer.{i}.<HF name> -> blocks.{i}.<ours>; query/key/value are fused into attn.qkv
    "layernorm_before": "norm1",
    "attention.output.dense": "attn.proj",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
HF_ACTIVATIONS = {"gelu": "gelu", "gelu_fast": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}
_HF_VIVIT_LAYER = re.compile(r"^vivit\.encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$")


def _hf_config(folder: Path, model_type: str) -> dict:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (an HF save_pretrained folder is expected)")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != model_type:
        raise ValueError(f"{config_file}: model_type={config.get('model_type')!r}, expected {model_type!r}")
    return config


def vivit_from_hf(folder: str | os.PathLike) -> ViViT:
    """Our :class:`models.recognition.vivit.ViViT` (``variant=1``) with the weights of an HF
    ``VivitForVideoClassification`` folder.

    Args:
        folder: a local ``save_pretrained`` folder; nothing is downloaded.

    Returns:
        The model in eval mode: (b c t h w) clips -> logits (b num_labels), equal to HF's in fp32 (HF takes
        (b t c h w)).

    Raises:
        FileNotFoundError: no ``config.json`` or weights.
        ValueError: not a ViViT folder, non-square patches, an unknown activation, or keys that do not map or fit.
    """
    folder = Path(folder)
    config = _hf_config(folder, "vivit")
    tubelet, patch_h, patch_w = config["tubelet_size"]
    if patch_h != patch_w:
        raise ValueError(f"{folder}: tubelet_size={config['tubelet_size']}: only square patches are supported")
    if config.get("hidden_act", "gelu_fast") not in HF_ACTIVATIONS:
        raise ValueError(f"{folder}: hidden_act={config['hidden_act']!r} is not one of {sorted(HF_ACTIVATIONS)}")
    model = ViViT(
        img_size=config["image_size"], patch_size=patch_h, tubelet_size=tubelet,
        in_chans=config.get("num_channels", 3), num_classes=len(config.get("id2label", {})),
        num_frames=config["num_frames"], embed_dim=config["hidden_size"], depth=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"], mlp_ratio=config["intermediate_size"] / config["hidden_size"],
        qkv_bias=config.get("qkv_bias", True), variant=1,
        mlp_act=HF_ACTIVATIONS[config.get("hidden_act", "gelu_fast")])
    state, qkv, unmapped = {}, {}, []
    for key, value in _read_weights(folder).items():
        match = _HF_VIVIT_LAYER.match(key)
        if key in HF_VIVIT_TOP:
            state[HF_VIVIT_TOP[key]] = value
        elif match and match.group(2) in HF_VIVIT_BLOCK:
            state[f"blocks.{match.group(1)}.{HF_VIVIT_BLOCK[match.group(2)]}.{match.group(3)}"] = value
        elif match and match.group(2) in ("attention.attention.query", "attention.attention.key",
                                          "attention.attention.value"):
            part = match.group(2).rsplit(".", 1)[1]
            qkv.setdefault((match.group(1), match.group(3)), {})[part] = value
        else:
            unmapped.append(key)
    if unmapped:
        raise ValueError(f"{folder}: HF keys with no ViViT counterpart: {unmapped[:8]}")
    for (layer, kind), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise ValueError(f"{folder}: layer {layer} {kind}: has {sorted(parts)}, needs query, key and value")
        state[f"blocks.{layer}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return load_strictly(model, state, str(folder)).eval()


def official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The weights of an official facebookresearch/TimeSformer checkpoint, under our names (``model.`` stripped).

    Raises:
        ValueError: the file holds no ``model_state`` dict of tensors.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: no 'model_state' (an official TimeSformer .pyth checkpoint is expected)")
    return {key.removeprefix("model."): value for key, value in state.items()}


def load_pretrained(source: str | os.PathLike) -> torch.nn.Module:
    """One entry point: a ready model, (b c t h w) normalised clips -> logits (b num_classes), in eval mode.

    Args:
        source: an HF ``save_pretrained`` folder of TimeSformer or ViViT (dispatched on ``config.json``'s
            ``model_type``), or a checkpoint of this project (``<run>/checkpoints/*.ckpt`` or the run folder, rebuilt
            from its ``config.yaml``). An official ``.pyth`` file carries no architecture: build the
            :class:`TimeSformer` yourself and load :func:`official_state_dict` into it.

    Raises:
        FileNotFoundError: ``source`` does not exist, or lacks its config.
        ValueError: an unsupported ``model_type`` or file, or weights that do not fit (named in the message).
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"pretrained source not found: {source}")
    if source.is_dir() and (source / "config.json").is_file():
        model_type = json.loads((source / "config.json").read_text()).get("model_type")
        loaders = {"timesformer": timesformer_from_hf, "vivit": vivit_from_hf}
        if model_type not in loaders:
            raise ValueError(f"{source}: model_type={model_type!r}; supported HF folders: {sorted(loaders)}")
        return loaders[model_type](source)
    if source.suffix in (".pyth", ".pth"):
        raise ValueError(f"{source}: an official checkpoint has no architecture; build TimeSformer(...) and "
                         "load_state_dict(official_state_dict(path))")
    from models.run import load_run  # a run of this project

    return load_run(source).expect("classifier").build_net()


HEAD_KEYS = ("head.weight", "head.bias")
PREPROCESSOR_FILE = "preprocessor_config.json"  # what HF's image processors save beside the weights


def source_preprocessing(source: str | os.PathLike) -> dict:
    """The input protocol a pretrained source states, as ``data.*`` values: ``mean``, ``std`` (of [0, 1] pixels),
    ``crop_size`` and ``resize_size`` (pixels).

    * an HF folder: its ``preprocessor_config.json`` (``image_mean``, ``image_std``, ``crop_size``,
      ``size.shortest_edge``), as ``save_pretrained`` of the image processor writes it;
    * a run of this project: its ``config.yaml``'s ``data`` values;
    * anything else (an official ``.pyth``, a timm file) states nothing: ``{}``.
    """
    source = Path(source)
    stated: dict = {}
    if source.is_dir() and (source / PREPROCESSOR_FILE).is_file():
        config = json.loads((source / PREPROCESSOR_FILE).read_text())
        if "image_mean" in config and "image_std" in config:
            stated.update(mean=[float(v) for v in config["image_mean"]], std=[float(v) for v in config["image_std"]])
        crop = config.get("crop_size")
        if isinstance(crop, dict) and "height" in crop:
            stated["crop_size"] = int(crop["height"])
        size = config.get("size")
        if isinstance(size, dict) and "shortest_edge" in size:
            stated["resize_size"] = int(size["shortest_edge"])
        return stated
    if source.suffix == ".ckpt" or (source.is_dir() and (source / "config.yaml").is_file()):
        from models.run import CONFIG_FILE, read_run_config, run_dir_of

        folder = source if source.is_dir() else run_dir_of(source)
        data = read_run_config(folder / CONFIG_FILE).data
        return {key: (list(data[key]) if key in ("mean", "std") else int(data[key]))
                for key in ("mean", "std", "crop_size", "resize_size") if data.get(key) is not None}
    return stated


def _image_vit_state(path: str | os.PathLike) -> dict[str, torch.Tensor] | None:
    """A timm image ViT's state dict (flat keys, no ``time_embed``), or None for another file (an official video
    checkpoint). Read once: the caller inflates from it."""
    from models.recognition.inflate import read_image_vit

    try:
        state = read_image_vit(path)
    except ValueError:
        return None
    return None if "time_embed" in state else state


def init_from_pretrained(net: torch.nn.Module, source: str | os.PathLike,
                         tubelet_init: str = "central_frame") -> list[str]:
    """Copy the weights of :func:`load_pretrained` ``(source)`` into ``net``, to fine-tune from them. An official
    TimeSformer ``.pyth`` file (which has no architecture of its own) fills ``net`` through
    :func:`official_state_dict`, so ``train.py model.pretrained=TimeSformer_divST_8x32_224_K400.pyth`` works when
    the config builds the matching model. A timm ImageNet ViT (``.safetensors``/``.pth``) is inflated into ``net``
    (:func:`models.recognition.inflate.inflate_from_image_vit`; tubelets by ``tubelet_init``).

    The classifier head is kept as ``net`` initialised it when its shape differs (another class count); every other
    parameter must exist in both with the same shape.

    Returns:
        The keys left at ``net``'s own initialisation (the replaced head, or nothing).

    Raises:
        ValueError: a non-head key is missing, unexpected or of another shape (the message names them).
    """
    image_vit = _image_vit_state(source) if Path(source).suffix in (".safetensors", ".pth", ".bin") else None
    if image_vit is not None:
        # an ImageNet ViT of timm: inflated as the papers do
        from models.recognition.inflate import inflate_from_image_vit

        return inflate_from_image_vit(net, image_vit, tubelet_init)
    if Path(source).suffix in (".pyth", ".pth"):
        state = official_state_dict(source)
    else:
        state = load_pretrained(source).state_dict()
    own = net.state_dict()
    replaced = [k for k in HEAD_KEYS if k in own and k in state and state[k].shape != own[k].shape]
    for key in replaced:
        state[key] = own[key]
    load_strictly(net, state, str(source))
    return replaced


__all__ = ["HF_BLOCK", "HF_TOP", "hf_to_ours", "init_from_pretrained", "load_pretrained", "load_strictly",
           "official_state_dict", "ours_to_hf", "source_preprocessing", "timesformer_from_hf", "vivit_from_hf"]
