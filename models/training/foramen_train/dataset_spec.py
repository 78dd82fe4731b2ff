"""The description of a data set: its name, classes, ignore index and ignored classes.

A dataset folder ``DIR`` may hold ``DIR/dataset.toml`` naming the data set and its classes
(``description`` optional, other top-level keys ignored)::

    name = "lumbar-synth"
    description = "..."
    ignore_index = 255
    [[classes]]
    index = 0
    name = "background"
    color = [0, 0, 0]

Without it, the class names come from the training config (colours then from
:data:`DEFAULT_PALETTE`). :class:`DataError`, the error of every dataset file, lives here.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (230, 60, 60),
    (60, 180, 75),
    (70, 130, 230),
    (255, 200, 40),
    (180, 80, 220),
    (40, 200, 200),
    (240, 130, 40),
    (250, 120, 190),
    (150, 110, 60),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (128, 128, 128),
    (255, 255, 255),
)
"""Overlay colours for classes when the dataset has no ``dataset.toml`` (index order)."""


class DataError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and line)."""


@dataclass(frozen=True)
class ClassInfo:
    """One segmentation class: its index in the masks, a name and an overlay colour."""

    index: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class DatasetSpec:
    """Name, classes, ignore index, ignored classes and (optional) description of a dataset.

    ``ignore_classes`` names classes whose truth pixels are left out of training and
    scoring, as Cityscapes and CamVid treat ``void``: the model keeps their output
    channel, but no pixel of theirs is a target or counts in the confusion matrix.
    """

    name: str
    classes: tuple[ClassInfo, ...]
    ignore_index: int = 255
    description: str = ""
    ignore_classes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain-data form (stored in checkpoints)."""
        return {
            "name": self.name,
            "classes": [{"index": c.index, "name": c.name, "color": list(c.color)} for c in self.classes],
            "ignore_index": self.ignore_index,
            "description": self.description,
            "ignore_classes": list(self.ignore_classes),
        }

    @classmethod
    def from_dict(cls, doc: dict) -> DatasetSpec:
        """Inverse of :meth:`to_dict`."""
        classes = tuple(ClassInfo(c["index"], c["name"], tuple(c["color"])) for c in doc["classes"])
        description = doc.get("description", "")
        return cls(
            name=doc["name"],
            classes=classes,
            ignore_index=doc["ignore_index"],
            description=description,
            ignore_classes=tuple(doc.get("ignore_classes", ())),
        )

    def with_ignored(self, names: list[str] | tuple[str, ...], where: str) -> DatasetSpec:
        """This spec with ``names`` added to ``ignore_classes``; unknown names are an
        error naming ``where`` (a file and key), and at least one class must stay scored."""
        unknown = [n for n in names if n not in self.class_names]
        if unknown:
            raise DataError(f"{where}: unknown class(es) {unknown}; the classes are {self.class_names}")
        merged = tuple(n for n in self.class_names if n in set(self.ignore_classes) | set(names))
        if len(merged) >= self.num_classes:
            raise DataError(f"{where}: ignoring {list(merged)} leaves no class to train or score")
        return dataclasses.replace(self, ignore_classes=merged)

    @property
    def ignored_indices(self) -> list[int]:
        """Indices of ``ignore_classes``."""
        return [c.index for c in self.classes if c.name in self.ignore_classes]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        """Class names in index order."""
        return [c.name for c in self.classes]


def load_dataset_spec(root: Path, class_names: list[str] | None = None, ignore_index: int = 255) -> DatasetSpec:
    """Read ``root/dataset.toml``, or build the spec from ``class_names``.

    When both exist, the names in ``dataset.toml`` must equal ``class_names`` (in order);
    a mismatch is an error rather than a silent choice.
    """
    toml_path = root / "dataset.toml"
    if toml_path.is_file():
        spec = _parse_dataset_toml(toml_path)
        if class_names is not None and list(class_names) != spec.class_names:
            raise DataError(
                f"{toml_path}: classes {spec.class_names} differ from the config's data.classes {list(class_names)}"
            )
        return spec
    if not class_names:
        raise DataError(f"{root}: no dataset.toml and no class names given (set data.classes in the config)")
    if len(class_names) > len(DEFAULT_PALETTE):
        raise DataError(
            f"{root}: {len(class_names)} classes but the default palette has {len(DEFAULT_PALETTE)} colours; "
            "add a dataset.toml with colours"
        )
    _check_ignore_index(ignore_index, len(class_names), f"{root}: ignore_index")
    classes = tuple(ClassInfo(i, str(n), DEFAULT_PALETTE[i]) for i, n in enumerate(class_names))
    return DatasetSpec(name=root.resolve().name, classes=classes, ignore_index=ignore_index)


def _parse_dataset_toml(path: Path) -> DatasetSpec:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid TOML: {err}") from err
    name = doc.get("name", path.parent.resolve().name)
    if not isinstance(name, str) or not name:
        raise DataError(f"{path}: name: expected a non-empty string, got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise DataError(f"{path}: description: expected a string, got {description!r}")
    entries = doc.get("classes")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: classes: expected a non-empty array of [[classes]] tables")
    classes = []
    for i, entry in enumerate(entries):
        where = f"{path}: classes[{i}]"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected a table")
        index, cname, color = entry.get("index"), entry.get("name"), entry.get("color")
        if not isinstance(index, int) or isinstance(index, bool):
            raise DataError(f"{where}.index: expected an integer, got {index!r}")
        if not isinstance(cname, str) or not cname:
            raise DataError(f"{where}.name: expected a non-empty string, got {cname!r}")
        if (
            not isinstance(color, list)
            or len(color) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)
        ):
            raise DataError(f"{where}.color: expected 3 integers in 0..255, got {color!r}")
        classes.append(ClassInfo(index, cname, (color[0], color[1], color[2])))
    classes.sort(key=lambda c: c.index)
    indices = [c.index for c in classes]
    if indices != list(range(len(classes))):
        raise DataError(f"{path}: classes: indices must be 0..{len(classes) - 1} without gaps, got {indices}")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: classes: duplicate class names in {names}")
    ignore_index = doc.get("ignore_index", 255)
    _check_ignore_index(ignore_index, len(classes), f"{path}: ignore_index")
    ignored = doc.get("ignore_classes", [])
    if not isinstance(ignored, list) or not all(isinstance(n, str) for n in ignored):
        raise DataError(f"{path}: ignore_classes: expected an array of class names, got {ignored!r}")
    spec = DatasetSpec(name=name, classes=tuple(classes), ignore_index=ignore_index, description=description)
    return spec.with_ignored(ignored, f"{path}: ignore_classes")


def _check_ignore_index(value: object, num_classes: int, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not num_classes <= value <= 255:
        raise DataError(f"{where}: expected an integer in {num_classes}..255, got {value!r}")
