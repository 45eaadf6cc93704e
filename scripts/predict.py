"""Classify one video: the top-k classes with their probabilities.

    python scripts/predict.py outputs/demo/divided datasets/moving_mnist_direction/test/00000.mp4
    python scripts/predict.py /models/timesformer-base-finetuned-k400 my_clip.mp4 --topk 5     # an HF folder

SOURCE is a run of this project (its folder or a checkpoint; frames, sizes and normalisation come from the run's own
evaluation protocol, its centred clip) or a local HF TimeSformer/ViViT folder (``config.json``'s ``num_frames``
spread evenly over the video, the short side resized to ``image_size`` and centre-cropped, normalised with
``preprocessor_config.json``'s mean and std, or the Kinetics models' 0.45/0.225 when there is none). Nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from einops import rearrange

from data.decoding import read_clip, video_info

KINETICS_MEAN, KINETICS_STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]


def _hf_predict(folder: Path, video: Path) -> tuple[torch.Tensor, list[str]]:
    """Class probabilities (k,) of an HF folder's model on ``video``, and the class names."""
    from models.recognition.pretrained import load_pretrained

    config = json.loads((folder / "config.json").read_text())
    processor = folder / "preprocessor_config.json"
    norm = json.loads(processor.read_text()) if processor.is_file() else {}
    mean, std = norm.get("image_mean", KINETICS_MEAN), norm.get("image_std", KINETICS_STD)
    num_frames, size = config["num_frames"], config["image_size"]
    length = video_info(str(video)).num_frames
    indices = np.linspace(0, length - 1, num_frames).round().astype(int).tolist()  # evenly over the video
    frames = read_clip(str(video), indices).float() / 255  # (c t h w) in [0, 1]
    x = rearrange(frames, "c t h w -> t c h w")
    x = TF.center_crop(TF.resize(x, [size], antialias=True), [size, size])
    x = TF.normalize(x, mean, std)
    model = load_pretrained(folder)
    with torch.no_grad():
        logits = model(rearrange(x, "t c h w -> 1 c t h w"))[0]
    names = [config.get("id2label", {}).get(str(k), str(k)) for k in range(len(logits))]
    return logits.softmax(dim=-1), names


def _run_predict(source: Path, video: Path) -> tuple[torch.Tensor, list[str]]:
    """Class probabilities (k,) of a run of ours on ``video``, with the run's evaluation clip, and the class names."""
    from data.annotations import find_class_names
    from data.frame_sampling import dense_indices
    from models.recognition.scoring import RecognitionModel

    model = RecognitionModel(source)
    data = model.config.data
    length = video_info(str(video)).num_frames
    indices = dense_indices(length, model.num_frames, int(data.get("frame_stride", 1)), train=False)
    frames = read_clip(str(video), indices).float()[None] / 255  # (1 c t h w) in [0, 1]
    with torch.no_grad():
        probabilities = model.net(model.prepare_frames(frames))[0].softmax(dim=-1).cpu()
    names = model.class_names or find_class_names(Path(str(data.root)) / str(data.test))
    return probabilities, list(names) if names else [str(k) for k in range(len(probabilities))]


def predict(source: str | Path, video: str | Path, topk: int = 5) -> list[tuple[str, float]]:
    """The ``topk`` most likely classes of ``video`` as ``(name, probability)``, most likely first.

    Raises:
        FileNotFoundError: ``source`` or ``video`` does not exist.
        ValueError: ``topk`` < 1, or a source that cannot be loaded (see
            :func:`models.recognition.pretrained.load_pretrained`).
    """
    source, video = Path(source), Path(video)
    if topk < 1:
        raise ValueError(f"topk={topk} must be >= 1")
    for path in (source, video):
        if not path.exists():
            raise FileNotFoundError(f"not found: {path}")
    is_hf = source.is_dir() and (source / "config.json").is_file()
    probabilities, names = (_hf_predict if is_hf else _run_predict)(source, video)
    best = probabilities.topk(min(topk, len(probabilities)))
    return [(names[int(k)], float(p)) for p, k in zip(best.values, best.indices)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="a run folder or checkpoint of this project, or a local HF model folder")
    parser.add_argument("video", help="a video file")
    parser.add_argument("--topk", type=int, default=5, help="classes to print (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        ranking = predict(args.source, args.video, args.topk)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"predict.py: error: {error}")
    width = max(len(name) for name, _ in ranking)
    for name, probability in ranking:
        print(f"{name:<{width}}  {probability:6.1%}")


if __name__ == "__main__":
    main()
