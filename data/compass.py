"""Direction classes named by compass points, and the relabelling of clips played backwards in time.

A dataset whose classes are directions names them by compass point (``E``, ``NE``, ``N``, ... in
``classes_direction.txt``, or the ``classes.txt`` the latent cache and the sample writer put beside their lists).
:func:`compass_angles` turns those names into angles (east is 0°, counter-clockwise as seen on screen: north, up, is
90°); the motion metrics score against them, and the time-reversal augmentation of both datamodules
(``data.time_reversal=true``) relabels a reversed clip with its opposite direction (:func:`time_reversal_labels`).
For Moving MNIST ``direction`` that relabelling is exact: a clip played backwards is bit for bit a clip of the
opposite direction.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# The 16 compass points counter-clockwise from east, 22.5° apart (a convention of the field, not a dataset's list).
COMPASS_POINTS = ("E", "ENE", "NE", "NNE", "N", "NNW", "NW", "WNW", "W", "WSW", "SW", "SSW", "S", "SSE", "SE", "ESE")


def compass_angles(class_names: Sequence[str]) -> np.ndarray:
    """Angles of compass-point class names, in degrees counter-clockwise from east (north = 90°).

    Accepts the 4-, 8- and 16-point names of :data:`COMPASS_POINTS` (``E``, ``NE``, ``ENE``, ...), case-insensitive,
    as the dataset builder writes them into ``classes_direction.txt``.

    Args:
        class_names: one name per class, in label order.

    Returns:
        float64 array (K,) in [0, 360).

    Raises:
        ValueError: a name is not a compass point; the message names it.
    """
    angles = []
    for name in class_names:
        point = name.strip().upper()
        if point not in COMPASS_POINTS:
            raise ValueError(f"class name {name!r} is not a compass point {COMPASS_POINTS}; "
                             "flow_direction_accuracy needs direction classes")
        angles.append(22.5 * COMPASS_POINTS.index(point))
    return np.array(angles, dtype=np.float64)


def opposite_directions(class_names: Sequence[str]) -> list[int]:
    """For compass-point classes, the index of each class's opposite direction (``E`` -> ``W``, ``NE`` -> ``SW``).

    Args:
        class_names: compass names in label order (see :func:`compass_angles`).

    Returns:
        One class index per class.

    Raises:
        ValueError: a name is not a compass point, or a direction has no opposite among the classes.
    """
    angles = compass_angles(class_names)
    lookup = {round(float(a) % 360, 6): i for i, a in enumerate(angles)}
    opposite = []
    for name, angle in zip(class_names, angles):
        partner = lookup.get(round(float(angle + 180) % 360, 6))
        if partner is None:
            raise ValueError(f"class {name!r} has no opposite direction among {list(class_names)}: time reversal "
                             "cannot relabel it")
        opposite.append(partner)
    return opposite


def time_reversal_labels(class_names: Sequence[str] | None, where: str) -> list[int]:
    """:func:`opposite_directions` for ``data.time_reversal=true``, with errors that say which data lacks what.

    Args:
        class_names: the data's class names, or None when it has none.
        where: where the names were looked for, for the message.

    Raises:
        ValueError: no class names, or names that are not opposite compass points.
    """
    if class_names is None:
        raise ValueError(f"data.time_reversal=true needs the class names in {where} to relabel reversed clips")
    try:
        return opposite_directions(class_names)
    except ValueError as error:
        raise ValueError(f"data.time_reversal=true: {error}") from error
