"""The metric registry: every metric :func:`models.metrics.evaluate.evaluate_videos` reports, registered once.

A :class:`Metric` carries its function, the name of its report key (``temporal_flickering``, or a key tagged by a
component: ``digit_accuracy[{frame_reader}]`` becomes ``digit_accuracy[frameclassifier:frame_digit]``), what it needs
(:data:`NEEDS`: a reference set, labels, a classifier callable, a per-frame reader, cut points, I3D or encoder
weights, ...), which direction is better, its range, its note for reports, its source (paper and code) and its row of
the docs/metrics.md table (:func:`markdown_table`). ``evaluate_videos`` asks :func:`plan` which registered metrics of
the requested groups have their needs met; the others are reported under ``skipped`` with the first unmet need's
reason. The definitions (:class:`Metric`, :class:`Need`, :class:`Inputs`, :class:`Batch`, :func:`register`) live in
:mod:`models.metrics.metric` and are re-exported here; the built-in metrics are registered by
:mod:`models.metrics.builtin`, which this module imports.

A metric is one function of a :class:`Batch`; its ``kind`` says what it returns:

* ``"clips"``: ``fn(batch) -> (b,)`` one value per clip; the report holds their mean, every clip's value and a 95 %
  bootstrap interval (and, when registered with ``curve=``, the clip-mean of ``curve(batch) -> (b k)`` per frame);
* ``"frames"``: ``fn(batch, per_frame: bool) -> (b k)`` per frame (pair) when ``per_frame``, else ``(b,)``; the report
  adds the clip-mean curve, and the clip value is the mean of its frames (unless ``clip_mean=False``: then
  ``fn(batch, False)``);
* ``"set"``: ``fn(batch) -> tuple of (b d) tensors``, concatenated over the set and handed to
  ``reduce(inputs, *tensors) -> value`` or ``(value, protocol dict)``: one value for the whole set (FVD).

Adding a metric is registering one function; it then appears in every report and in the table::

    import torch
    from models.metrics.evaluate import evaluate_videos
    from models.metrics.registry import register

    @register("mean_brightness", group="temporal", better="none", value_range="[0, 1]",
              note="mean pixel value of the clip", source="none: a sanity check",
              formula="`mean_{c,t,h,w} x` of the [0, 1] clip", comparability="project-specific")
    def mean_brightness(batch) -> torch.Tensor:
        return batch.video.double().mean(dim=(1, 2, 3, 4))  # (b,) float64: one value per clip

    evaluate_videos("outputs/samples/")  # ... reports "mean_brightness" beside temporal_flickering

A metric that needs more (e.g. ``needs=("reference", "labels")``) reads it from the batch (``batch.reference``,
``batch.labels``) or from the resolved inputs (``batch["classifier"]``); a need that is not in :data:`NEEDS` is read
from ``evaluate_videos(..., extra={name: value})`` and is unmet when absent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from models.metrics import builtin  # noqa: F401  (registers the built-in metrics)
from models.metrics.metric import (
    BETTER,
    GROUPS,
    KINDS,
    NEEDS,
    REGISTRY,
    TABLE_HEADER,
    Batch,
    Inputs,
    Lazy,
    Metric,
    Need,
    Unmet,
    need,
    register,
    unregister,
)


def metrics(groups: Collection[str] = GROUPS) -> list[Metric]:
    """The registered metrics of ``groups``, in registration order (the docs table's order)."""
    return [metric for metric in REGISTRY.values() if metric.group in groups]


def report_order(metric: Metric) -> tuple[int, bool]:
    """Sort key of a report: per-frame metrics (reference-free, then paired), per-clip metrics, then set-level
    metrics; registration order within each (the sort is stable)."""
    return KINDS.index(metric.kind), metric.kind == "frames" and "reference" in metric.needs


def plan(inputs: Inputs, groups: Collection[str] = GROUPS) -> tuple[list[tuple[Metric, str]], dict[str, str]]:
    """Which metrics of ``groups`` run on ``inputs``, and why the others do not.

    Needs are resolved in registration order, each once (so a component is loaded once, when a metric first needs
    it). A metric runs when all its needs are met; otherwise it is skipped with the reason of its first unmet need,
    under its key, or under its ``name`` while the tag's component is unknown, unless that need is in its ``quiet``.

    Returns:
        ``(runs, skipped)``: ``(metric, report key)`` pairs in registration order, and report key → reason.
    """
    runs: list[tuple[Metric, str]] = []
    skipped: dict[str, str] = {}
    for metric in metrics(groups):
        unmet = next(((name, inputs.reason(name)) for name in metric.needs if inputs.reason(name) is not None), None)
        if unmet is None:
            runs.append((metric, metric.key_for(inputs)))
        elif unmet[0] not in metric.quiet:
            known = metric.tag is None or inputs.resolved(metric.tag)
            skipped[metric.key_for(inputs) if known else metric.name] = unmet[1]
    return runs, skipped


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(registered: Iterable[Metric] | None = None) -> str:
    """The metric table of docs/metrics.md, one row per registered metric with ``in_table``, in registration order.

    Columns: key (as documented, e.g. ``classifier_accuracy[<run>]``), formula and source, better
    (higher/lower/neither), range, substitution and comparability. Ends with a newline.
    """
    rows = [f"| `{m.documented_key()}` | {_cell(m.formula)} | {BETTER[m.better]} | {_cell(m.value_range)} | "
            f"{_cell(m.comparability)} |\n" for m in (REGISTRY.values() if registered is None else registered)
            if m.in_table]
    return TABLE_HEADER + "".join(rows)


__all__ = ["BETTER", "Batch", "GROUPS", "Inputs", "KINDS", "Lazy", "Metric", "NEEDS", "Need", "REGISTRY", "Unmet",
           "markdown_table", "metrics", "need", "plan", "register", "report_order", "unregister"]
