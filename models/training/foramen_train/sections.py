"""Typed TOML configuration sections, shared by the segmentation recipe (:mod:`.config`)
and the GAN (:mod:`.gan.config`).

A section is a dataclass; :func:`build_section` fills it from parsed TOML, and unknown
keys, missing required keys and values of the wrong type are errors that name the file
and the dotted field. :func:`fields_from` makes a section out of another dataclass's
fields (a ``[model]`` section from the model's own configuration), so the field list,
types and defaults are written once. This module imports no other module of the recipe.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the field."""


def fields_from(source: type, exclude: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Class decorator: make the class a dataclass with ``source``'s fields (a dataclass),
    less ``exclude``, in ``source``'s order and with its defaults, followed by the class's
    own annotated fields. An own field of the same name replaces ``source``'s in place."""

    def decorate(cls: type) -> type:
        own = dict(cls.__dict__.get("__annotations__", {}))
        hints = typing.get_type_hints(source)
        annotations: dict[str, Any] = {}
        for f in dataclasses.fields(source):
            if f.name in exclude:
                continue
            annotations[f.name] = hints[f.name]
            if f.name in own:
                continue
            if f.default is not dataclasses.MISSING:
                setattr(cls, f.name, f.default)
            elif f.default_factory is not dataclasses.MISSING:
                setattr(cls, f.name, dataclasses.field(default_factory=f.default_factory))
        annotations.update(own)
        cls.__annotations__ = annotations
        return dataclasses.dataclass(cls)

    return decorate


def repo_root_for(path: Path) -> Path:
    """Nearest ancestor of ``path`` holding ``Cargo.toml`` or ``.git`` (else its folder)."""
    start = path.resolve().parent
    for folder in (start, *start.parents):
        if (folder / "Cargo.toml").is_file() or (folder / ".git").exists():
            return folder
    return start


def read_toml(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Parse a config file and apply ``section.key=value`` overrides (TOML values)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    for item in overrides or []:
        apply_override(doc, item)
    return doc


def resolve_path(config_path: Path, value: str) -> str:
    """``value`` as an absolute path; a relative one is taken from the config's repository root."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = repo_root_for(Path(config_path)) / path
    return str(path.resolve())


def apply_override(doc: dict[str, Any], item: str) -> None:
    """Set ``section.key=value`` (a TOML value, else a bare string) in parsed TOML ``doc``."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare string such as a path
    parts = key.strip().split(".")
    table = doc
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError(f"override {item!r}: {part} is not a table")
    table[parts[-1]] = value


def build_section(cls: type, table: Any, source: str, prefix: str = "") -> Any:
    """An instance of dataclass ``cls`` from parsed TOML ``table``; nested dataclass fields
    are built from sub-tables. ``source`` (the file) and ``prefix`` (the dotted path of
    ``table``, ending in ``.``) name the place of an error."""
    where = f"{source}: {prefix.rstrip('.') or 'top level'}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = _coerce(table[name], hints[name], source, prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {prefix + name}")
    return cls(**kwargs)


_SCALARS: dict[type, type | tuple[type, ...]] = {int: int, float: (int, float), bool: bool, str: str}


def _coerce(value: Any, kind: Any, source: str, name: str) -> Any:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        # ``X | None``: TOML has no null, so a given value is an X.
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if dataclasses.is_dataclass(kind):
        return build_section(kind, value, source, name + ".")
    if typing.get_origin(kind) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {name}: expected an array, got {value!r}")
        (inner,) = typing.get_args(kind)
        return [_coerce(v, inner, source, f"{name}[{i}]") for i, v in enumerate(value)]
    expected = _SCALARS[kind]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, expected):
        raise ConfigError(f"{source}: {name}: expected {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def to_toml(data: dict[str, Any], header: str = "") -> str:
    """Serialise a plain nested dict (str/int/float/bool/lists, ``None`` skipped) to TOML."""
    lines = [f"# {line}" for line in header.splitlines()]

    def emit(table: dict[str, Any], path: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and v is not None}
        if path:
            lines.append("")
            lines.append(f"[{path}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in table.items():
            if isinstance(value, dict):
                emit(value, f"{path}.{key}" if path else key)

    emit(data, "")
    return "\n".join(lines) + "\n"
