"""A per-clip metric of an evaluate_videos.py report, broken down by one label set: which digits lose their shape.

``scripts/evaluate_videos.py`` keeps every metric per clip (``per_clip`` in its JSON report). This script averages
one of them over the clips of each label of a list file of the same clips, e.g. ``identity_consistency`` (one digit
in every frame) per requested digit:

    python scripts/metric_by_label.py outputs/gen/digits/samples_metrics.json \\
        --labels outputs/gen/digits/samples/samples_digit.txt        # + --metric, --out

Prints one line per label: its clips, the metric's mean over them, and (for a 0/1 metric such as identity) how many
of the clips score 0. ``--out`` writes ``{"metrics": {"<metric>_<label>": mean, ...}}``, an evaluate_videos.py-style
report that ``scripts/records.py write --row`` reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data.annotations import read_classes, read_list_file


def per_clip_values(report: dict, metric: str, source: str = "report") -> list[float]:
    """The per-clip values of ``metric`` in an evaluate_videos.py report.

    Args:
        report: the parsed JSON report (``per_clip`` maps metric keys to one value per clip).
        metric: a key of ``per_clip``, or its bare name without the component tag (``identity_consistency`` finds
            ``identity_consistency[frameclassifier:frame_digit]``).
        source: the report's name, for errors.

    Raises:
        ValueError: the report has no ``per_clip``, or no key or more than one key matches ``metric``.
    """
    per_clip = report.get("per_clip")
    if not isinstance(per_clip, dict):
        raise ValueError(f"{source}: no per_clip values (not a scripts/evaluate_videos.py JSON report)")
    keys = [key for key in per_clip if key == metric or key.partition("[")[0] == metric]
    if len(keys) != 1:
        raise ValueError(f"{source}: metric {metric!r} matches {keys or 'no key'} of per_clip {sorted(per_clip)}")
    return [float(value) for value in per_clip[keys[0]]]


def by_label(values: list[float], labels: list[int]) -> dict[int, dict[str, float]]:
    """Group per-clip values by label.

    Args:
        values: one metric value per clip.
        labels: one integer label per clip, in the same order.

    Returns:
        For each label (sorted): ``clips`` (count), ``mean`` (of its values) and ``zeros`` (clips scoring 0).

    Raises:
        ValueError: the two lists differ in length.
    """
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} metric values but {len(labels)} labels")
    groups: dict[int, list[float]] = {}
    for value, label in zip(values, labels):
        groups.setdefault(label, []).append(value)
    return {label: {"clips": len(group), "mean": sum(group) / len(group), "zeros": sum(v == 0 for v in group)}
            for label, group in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="scripts/evaluate_videos.py's JSON report")
    parser.add_argument("--labels", type=Path, required=True,
                        help="a 'path label' list file of the same clips in the same order, e.g. samples_digit.txt")
    parser.add_argument("--classes", type=Path, help="label names, one per line (default: classes_<set>.txt beside "
                        "a samples_<set>.txt list, else the integer labels)")
    parser.add_argument("--metric", default="identity_consistency", help="a per_clip key (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="also write the means as {'metrics': ...} JSON here")
    args = parser.parse_args(argv)
    try:
        if not args.report.is_file():
            raise FileNotFoundError(f"{args.report}: no such report")
        report = json.loads(args.report.read_text())
        values = per_clip_values(report, args.metric, str(args.report))
        samples = read_list_file(args.labels, root=args.labels.parent)
        listed = Path(str(report.get("protocol", {}).get("videos", "")))
        if listed.is_file() and listed.resolve() != args.labels.resolve():  # the report's own list: same clips?
            scored = [Path(s.path).name for s in read_list_file(listed, root=listed.parent)]
            if scored != [Path(s.path).name for s in samples]:
                raise ValueError(f"{args.labels} does not list the clips of {listed} (scored by {args.report}) "
                                 "in the same order")
        groups = by_label(values, [s.label for s in samples])
    except (FileNotFoundError, ValueError) as error:
        print(f"metric_by_label.py: {error}", file=sys.stderr)
        return 2
    classes_file = args.classes
    if classes_file is None and args.labels.stem.startswith("samples_"):
        beside = args.labels.with_name(f"classes_{args.labels.stem.removeprefix('samples_')}.txt")
        classes_file = beside if beside.is_file() else None
    names = read_classes(classes_file) if classes_file is not None else None
    metrics = {}
    print(f"{'label':>8} {'clips':>6} {args.metric:>22} {'scoring 0':>10}")
    for label, group in groups.items():
        name = names[label] if names is not None and 0 <= label < len(names) else str(label)
        print(f"{name:>8} {group['clips']:>6} {group['mean']:>22.4f} {group['zeros']:>10}")
        metrics[f"{args.metric}_{name}"] = group["mean"]
    if args.out is not None:
        args.out.write_text(json.dumps({"metrics": metrics}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
