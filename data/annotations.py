"""Read the list of (video path, label) pairs a clip dataset is built from.

Three formats, all with paths relative to a root folder:

* **List file** (mmaction2 ``VideoDataset``): one ``path label`` per line; the label is the last whitespace-separated
  field, so paths may contain spaces. Blank lines and lines starting with ``#`` are skipped.
* **CSV with a header**: a path column (``path``, ``filename`` or ``video``) and a ``label`` column holding class
  indices or class names. Kinetics CSVs (``label,youtube_id,time_start,time_end,split``) are read with the usual
  download layout ``{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4``.
* **Folder per class** (UCF101 style): ``root/<class name>/<video>``; classes are sorted by name.

Class names are mapped to indices through ``classes`` when given, otherwise through the sorted set of names found.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
PATH_COLUMNS = ("path", "filename", "video")


@dataclass(frozen=True)
class Sample:
    """One video of a dataset: an absolute-or-root-joined ``path`` and an integer ``label``."""

    path: str
    label: int


def _labels_to_int(raw: list[str], classes: list[str] | None, source: str) -> tuple[list[int], list[str] | None]:
    if all(label.lstrip("-").isdigit() for label in raw):
        return [int(label) for label in raw], classes
    names = classes if classes is not None else sorted(set(raw))
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(raw) - index.keys())
    if unknown:
        raise ValueError(f"{source}: labels {unknown[:5]} are not in classes ({len(names)} names)")
    return [index[label] for label in raw], names


def read_list_file(path: str | os.PathLike, root: str | os.PathLike, classes: list[str] | None = None) -> list[Sample]:
    """Parse a ``path label`` list file or a CSV with a header.

    Args:
        path: the annotation file; ``.csv`` selects CSV parsing.
        root: folder the listed paths are relative to.
        classes: optional class names for string labels (index = position).

    Returns:
        Samples in file order.

    Raises:
        FileNotFoundError: the annotation file does not exist.
        ValueError: a malformed line or unknown label, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    rows: list[tuple[str, str]] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            path_col = next((c for c in PATH_COLUMNS if c in fields), None)
            kinetics = path_col is None and {"label", "youtube_id", "time_start", "time_end"} <= set(fields)
            if "label" not in fields or (path_col is None and not kinetics):
                raise ValueError(f"{path}: CSV header {fields} needs a 'label' column and one of {PATH_COLUMNS} "
                                 "(or the Kinetics columns youtube_id,time_start,time_end)")
            for row in reader:
                if kinetics:
                    name = f"{row['youtube_id']}_{int(row['time_start']):06d}_{int(row['time_end']):06d}.mp4"
                    rows.append((os.path.join(row["label"], name), row["label"]))
                else:
                    rows.append((row[path_col], row["label"]))
    else:
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'path label', got {line!r}")
            rows.append((parts[0], parts[1]))
    labels, _ = _labels_to_int([label for _, label in rows], classes, str(path))
    return [Sample(os.path.join(root, p), label) for (p, _), label in zip(rows, labels)]


def read_folder_tree(root: str | os.PathLike, classes: list[str] | None = None) -> tuple[list[Sample], list[str]]:
    """Collect ``root/<class>/<video>`` files (UCF101 style).

    Args:
        root: folder with one sub-folder per class.
        classes: optional class order; defaults to sorted sub-folder names.

    Returns:
        Samples sorted by path, and the class names.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: no class folders or no video files were found.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder not found: {root}")
    names = classes if classes is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise ValueError(f"{root}: no class sub-folders found (expected root/<class>/<video>)")
    samples = [
        Sample(str(f), label)
        for label, name in enumerate(names)
        for f in sorted((root / name).rglob("*"))
        if f.suffix.lower() in VIDEO_EXTENSIONS
    ]
    if not samples:
        raise ValueError(f"{root}: no video files with extensions {VIDEO_EXTENSIONS}")
    return samples, names


def read_classes(path: str | os.PathLike | None) -> list[str] | None:
    """Read one class name per line, or return None when no file is given."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classes file not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


CLASSES_FILE = "classes.txt"


def write_class_names(folder: str | os.PathLike, names: list[str]) -> Path:
    """Write ``folder/classes.txt`` (one name per line, label order), where :func:`find_class_names` finds it for
    the ``samples.txt`` list in the same folder. Returns the file's path."""
    path = Path(folder) / CLASSES_FILE
    path.write_text("\n".join(names) + "\n")
    return path


def find_class_names(list_file: str | os.PathLike) -> list[str] | None:
    """The class names that go with a list file, found by the project's two conventions, or None.

    1. ``classes_<task>.txt`` beside a list file named ``<split>_<task>.txt`` (what the Moving MNIST builder writes:
       ``test_direction.txt`` → ``classes_direction.txt``; the sample writer's ``samples_digit.txt`` →
       ``classes_digit.txt``);
    2. ``classes.txt`` in the list file's folder (what the sample writer puts beside ``samples.txt``).

    Args:
        list_file: a ``path label`` list file.

    Returns:
        One name per class, in label order, or None when neither file exists.
    """
    list_file = Path(list_file)
    candidates = [list_file.parent / CLASSES_FILE]
    if "_" in list_file.stem:
        candidates.insert(0, list_file.parent / f"classes_{list_file.stem.split('_', 1)[1]}.txt")
    for candidate in candidates:
        if candidate.is_file():
            return read_classes(candidate)
    return None
