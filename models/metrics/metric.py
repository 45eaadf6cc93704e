"""What a registered metric is, what it needs and what it is given: the definitions behind
:mod:`models.metrics.registry` (import the registry, which also registers the built-in metrics).

* :class:`Metric`: one registered function with its key, needs, direction, range, notes, source and table row;
  :func:`register` adds one to :data:`REGISTRY`.
* :class:`Need`: something a metric needs (a reference set, labels, a classifier callable, ...), resolved by a
  function of the :class:`Inputs` that raises :class:`Unmet` with the reason to report; :func:`need` adds one to
  :data:`NEEDS`.
* :class:`Inputs`: what one evaluation offers; :class:`Batch`: what a metric function receives.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from models.metrics.learned import network_name

GROUPS = ("temporal", "paired", "fvd", "accuracy", "consistency")
KINDS = ("frames", "clips", "set")
BETTER = {"higher": "higher", "lower": "lower", "none": "neither"}  # direction -> the table's word
TABLE_HEADER = ("| key | formula and source | better | range | substitution: comparable to papers? |\n"
                "|---|---|---|---|---|\n")


class Unmet(Exception):
    """Raised by a need's resolver when the evaluation cannot provide it; the message is the reason reported."""


@dataclass(frozen=True)
class Need:
    """Something a metric needs, and how an evaluation provides it.

    Attributes:
        name: what metrics list in ``needs``.
        doc: what it is, in a few words.
        resolve: ``resolve(inputs) -> value``; raises :class:`Unmet` (the reason) when the evaluation lacks it.
        label: how the component appears in a documented key, e.g. ``<run>`` in ``classifier_accuracy[<run>]``.
    """

    name: str
    doc: str
    resolve: Callable[[Inputs], Any]
    label: str | None = None


NEEDS: dict[str, Need] = {}


def need(name: str, doc: str, label: str | None = None) -> Callable[[Callable[[Inputs], Any]], Callable[[Inputs], Any]]:
    """Register a need's resolver (decorator); see :class:`Need`."""
    def decorate(resolve: Callable[[Inputs], Any]) -> Callable[[Inputs], Any]:
        NEEDS[name] = Need(name, doc, resolve, label)
        return resolve

    return decorate


class Lazy:
    """A component built on first use (e.g. a network loaded from a path only when a metric needs it).

    Args:
        build: ``build() -> component``.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self.build = build


class Inputs:
    """What one evaluation has to offer: the video sets, options and components, each need resolved once.

    Args:
        videos: the scored :class:`models.metrics.video_set.VideoSet`.
        reference: the paired reference set, or None.
        digit_set: the same clips listed with their digit labels (``--digit-labels``), or None.
        components: networks and weights by name (``classifier``, ``frame_reader``, ``encoder``, ``i3d``), each a
            callable, None, or a :class:`Lazy` built on first use.
        cuts: frame indices where a slide starts (identity consistency per slide).
        extra: values of needs not in :data:`NEEDS`, by name.
    """

    def __init__(self, videos: Any, reference: Any = None, digit_set: Any = None,
                 components: Mapping[str, Any] | None = None, cuts: Collection[int] = (),
                 extra: Mapping[str, Any] | None = None) -> None:
        self.videos, self.reference, self.digit_set = videos, reference, digit_set
        self.components = dict(components or {})
        self.cuts = tuple(int(c) for c in cuts)
        self.extra = dict(extra or {})
        self._values: dict[str, Any] = {}
        self._reasons: dict[str, str] = {}

    def component(self, name: str) -> Any:
        """The component ``name`` (a :class:`Lazy` one is built now, once), or None when not given."""
        value = self.components.get(name)
        if isinstance(value, Lazy):
            value = self.components[name] = value.build()
        return value

    def reason(self, name: str) -> str | None:
        """Why the need ``name`` is unmet, or None when it is met (resolving it, once)."""
        if name not in self._values and name not in self._reasons:
            try:
                if name in NEEDS:
                    self._values[name] = NEEDS[name].resolve(self)
                elif name in self.extra:
                    self._values[name] = self.extra[name]
                else:
                    raise Unmet(f"needs {name!r}: pass evaluate_videos(..., extra={{{name!r}: ...}})")
            except Unmet as unmet:
                self._reasons[name] = str(unmet)
        return self._reasons.get(name)

    def resolved(self, name: str) -> bool:
        """Whether the need ``name`` has been resolved, and met."""
        return name in self._values

    def __getitem__(self, name: str) -> Any:
        """The value of a met need; resolvers use it to build on another need (its :class:`Unmet` propagates)."""
        reason = self.reason(name)
        if reason is not None:
            raise Unmet(reason)
        return self._values[name]


@dataclass
class Batch:
    """One batch of the evaluation, as every metric function receives it.

    Attributes:
        video: float32 (b c t h w) in [0, 1], RGB (c = 3) as decoded, the frame-order control applied.
        reference: float32 (b c t h w) in [0, 1], the paired reference clips, or None.
        labels: int64 (b,) labels of the clips, or None.
        start: index of the batch's first clip in the video set.
        inputs: the evaluation's :class:`Inputs`; ``batch[name]`` is a met need's value.
    """

    video: torch.Tensor
    reference: torch.Tensor | None
    labels: torch.Tensor | None
    start: int
    inputs: Inputs
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.video.shape[0]

    def __getitem__(self, name: str) -> Any:
        return self.inputs[name]

    def shared(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per batch, for the metrics that read the same intermediate (e.g. the dominant motion)."""
        if name not in self._shared:
            self._shared[name] = compute()
        return self._shared[name]


@dataclass(frozen=True)
class Metric:
    """A registered metric; see the module docstring and :func:`register` for the fields."""

    name: str
    fn: Callable[..., Any]
    key: str
    group: str
    better: str
    value_range: str
    note: str | Callable[[Inputs], str]
    source: str
    formula: str
    comparability: str
    needs: tuple[str, ...] = ()
    kind: str = "clips"
    quiet: tuple[str, ...] = ()
    protocol: Callable[[Inputs], dict[str, Any]] | None = None
    reduce: Callable[..., Any] | None = None
    clip_mean: bool = True
    table_key: str | None = None
    in_table: bool = True
    curve: Callable[[Batch], torch.Tensor] | None = None

    @property
    def tag(self) -> str | None:
        """The component that tags the key (the placeholder of ``key``), or None for a fixed key."""
        fields = [name for _, name, _, _ in string.Formatter().parse(self.key) if name]
        return fields[0] if fields else None

    def key_for(self, inputs: Inputs) -> str:
        """The report key: ``key`` with its tag filled by the component's name (resolving the component)."""
        return self.key.format(**{self.tag: network_name(inputs[self.tag], self.tag)}) if self.tag else self.key

    def note_for(self, inputs: Inputs) -> str:
        """The note written beside the value."""
        return self.note(inputs) if callable(self.note) else self.note

    def documented_key(self) -> str:
        """The key as the docs table shows it, e.g. ``classifier_accuracy[<run>]``."""
        if self.table_key:
            return self.table_key
        if not self.tag:
            return self.key
        return self.key.format(**{self.tag: NEEDS[self.tag].label if self.tag in NEEDS else f"<{self.tag}>"})


REGISTRY: dict[str, Metric] = {}


def register(name: str, *, group: str, better: str, value_range: str, note: str | Callable[[Inputs], str],
             source: str, formula: str | None = None, comparability: str = "", key: str | None = None,
             needs: Iterable[str] = (), kind: str = "clips", quiet: Iterable[str] = (),
             protocol: Callable[[Inputs], dict[str, Any]] | None = None, reduce: Callable[..., Any] | None = None,
             clip_mean: bool = True, table_key: str | None = None, in_table: bool = True,
             curve: Callable[[Batch], torch.Tensor] | None = None,
             replace: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a metric function (decorator; the function is returned unchanged).

    Args:
        name: unique name; the report key when the metric has no tag, and the key a skip is reported under while
            its tag's component is unknown (e.g. ``classifier_accuracy`` when no classifier is given).
        group: one of :data:`GROUPS` (``evaluate_videos(groups=...)`` selects by group).
        better: ``higher``, ``lower`` or ``none`` (neither).
        value_range: the range of values, as the table shows it (e.g. ``[0, 1]``, ``≥ 0 (pixels)``).
        note: what the value is, written beside it in reports; a callable ``note(inputs)`` when it depends on them.
        source: the paper and code the definition follows.
        formula: the table's "formula and source" cell (default: ``note``).
        comparability: the table's "substitution: comparable to papers?" cell.
        key: the report key, with at most one ``{need}`` placeholder filled by that component's name, e.g.
            ``fvd[{i3d}]``; default ``name``.
        needs: the needs (:data:`NEEDS`, or names given in ``extra``) checked in order; the first unmet one's
            reason is reported under ``skipped``.
        kind: ``clips``, ``frames`` or ``set`` (module docstring).
        quiet: needs whose absence is not reported for this metric (another metric of the same need reports it).
        protocol: ``protocol(inputs) -> dict`` written to the report's protocol under ``name`` when the metric runs.
        reduce: for ``set`` metrics, ``reduce(inputs, *tensors) -> value | (value, protocol)``.
        clip_mean: for ``frames`` metrics, whether a clip's value is the mean of its frames (else ``fn(batch, False)``).
        table_key: the key shown in the docs table, when the default (the tag as ``<run>``, ...) does not fit.
        in_table: whether the metric has a row in the docs table.
        curve: for ``clips`` metrics, ``curve(batch) -> (b k)`` per-frame values whose clip mean the report adds as
            the metric's per-frame curve (the figure beside the report), e.g. the digit accuracy of each frame.
        replace: allow replacing a registered metric of the same name.

    Raises:
        ValueError: a duplicate name, an unknown group, direction or kind, a ``set`` metric without ``reduce``, a
            ``curve`` on a metric that is not ``clips``, or a key with more than one placeholder.
    """
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY and not replace:
            raise ValueError(f"a metric named {name!r} is already registered (pass replace=True to replace it)")
        if group not in GROUPS:
            raise ValueError(f"group={group!r} is not one of {GROUPS}")
        if better not in BETTER:
            raise ValueError(f"better={better!r} is not one of {tuple(BETTER)}")
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not one of {KINDS}")
        if (kind == "set") != (reduce is not None):
            raise ValueError(f"{name}: a 'set' metric needs reduce=, and only a 'set' metric takes it")
        if curve is not None and kind != "clips":
            raise ValueError(f"{name}: only a 'clips' metric takes curve= ('frames' metrics have their own curve)")
        metric = Metric(name, fn, key or name, group, better, value_range, note, source,
                        note if formula is None and isinstance(note, str) else formula or "", comparability,
                        tuple(needs), kind, tuple(quiet), protocol, reduce, clip_mean, table_key, in_table, curve)
        if len([f for _, f, _, _ in string.Formatter().parse(metric.key) if f]) > 1:
            raise ValueError(f"key={metric.key!r} has more than one placeholder")
        REGISTRY[name] = metric
        return fn

    return decorate


def unregister(name: str) -> Metric:
    """Remove a registered metric and return it.

    Raises:
        KeyError: no metric of that name.
    """
    return REGISTRY.pop(name)


__all__ = ["BETTER", "Batch", "GROUPS", "Inputs", "KINDS", "Lazy", "Metric", "NEEDS", "Need", "REGISTRY",
           "TABLE_HEADER", "Unmet", "need", "register", "unregister"]
