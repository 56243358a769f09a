"""The one config layering loop and the one error format, shared by pretraining (``smart.config``), fine-tuning /
linear probing (``smart.downstream.protocol``) and segmentation (``smart.downstream.segmentation``).

A step's config is its ``DEFAULTS`` table with layers applied in order, later wins::

    defaults <- preset <- method (pretraining only) <- config file / variant ``set`` <- command-line ``--set``

Every layer is a mapping, nested (``{"loss": {"aitd": 0}}``) or dotted (``{"loss.aitd": 0}``). A step describes its
keys with a ``schema``: a mapping of key -> type tag, or of section -> (key -> tag) for a two-level config. Tags:
``"int"``, ``"float"`` (ints and float literals such as ``"2e-4"`` accepted), ``"bool"``, ``"str"`` (non-empty free
text), ``"str:<a>|<b>"`` (one of), ``"ints:<n>"`` / ``"floats:<n>"`` / ``"strs:<n>"`` (a list of n; 0 = any length >= 1),
``"dict"`` (an open mapping whose sub-keys the step checks itself, e.g. ``scratch_model.embed_dim``), ``"any"``; a
``"?"`` prefix allows null. Plain dicts and these tags rather than pydantic/OmegaConf: see docs/ARCHITECTURE.md
"Configuration".

Errors: one line, ``ValueError``, naming the key, the value, where it came from and what is allowed
(:func:`key_error`).

A component receives a typed, frozen :class:`Section` of the resolved config, not the whole dict
(``smart.ssl.sections`` for pretraining, ``smart.downstream.sections`` for fine-tuning / probing): a dataclass whose
field annotations map to the tags above (:func:`field_tag`) and are checked by :func:`coerce` on construction.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Collection, Iterable, Mapping

import yaml

Layer = tuple[str, Mapping[str, Any]]

# The pretraining spelling of the optimiser settings the flat downstream / segmentation configs also have: one name
# per concept across steps (``optim.lr`` everywhere; the flat ``lr`` stays accepted there).
OPTIM_ALIASES: dict[str, str] = {"optim.lr": "lr", "optim.weight_decay": "weight_decay"}


def key_error(what: str, key: str, value: Any, allowed: str, source: str | None = None) -> ValueError:
    """The one error format: ``<what> config key '<key>': expected <allowed>, got <value> [(from <source>)]``."""
    prefix = f"{what} config key" if what else "config key"
    where = f" (from {source})" if source else ""
    return ValueError(f"{prefix} '{key}': expected {allowed}, got {value!r}{where}")


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (every nested mapping is flattened)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c.d=[1,2]"]`` -> ``{"a.b": 1, "c.d": [1, 2]}``; values are parsed with ``yaml.safe_load``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {item!r}: value is not valid YAML ({exc})") from exc
    return out


def yaml_value(value: Any) -> str:
    """A config value as the text after ``key=``: strings as they are, anything else as JSON (valid YAML, so lists,
    null and booleans round-trip through :func:`parse_set`)."""
    return value if isinstance(value, str) else json.dumps(value)


def merged(*override_dicts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later dicts win; a key keeps the position of its first appearance (``dict.update``)."""
    out: dict[str, Any] = {}
    for overrides in override_dicts:
        out.update(overrides or {})
    return out


def set_items(*override_dicts: Mapping[str, Any] | None) -> list[str]:
    """``["key=value", ...]`` of the merged dicts, the inverse of :func:`parse_set`: what the workflow's rules pass
    as ``--set`` and what ``smart plan`` resolves a job's config with."""
    return [f"{k}={yaml_value(v)}" for k, v in merged(*override_dicts).items()]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (empty file -> ``{}``); ``ValueError`` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return dict(data)


def describe(tag: str) -> str:
    """What a type tag allows, in words (the ``expected ...`` of :func:`key_error`)."""
    nullable = tag.startswith("?")
    kind, _, arg = tag.lstrip("?").partition(":")
    words = {"int": "an integer", "float": "a number", "bool": "true or false", "dict": "a mapping", "any": "a value",
             "str": ("one of " + ", ".join(arg.split("|"))) if arg else "a non-empty string"}.get(kind)
    if kind in ("ints", "floats", "strs"):
        items = {"ints": "integers", "floats": "numbers", "strs": "non-empty strings"}[kind]
        words = f"a list of {int(arg) or 'one or more'} {items}"
    if words is None:
        raise AssertionError(f"bad schema tag {tag!r}")
    return words + (" or null" if nullable else "")


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:  # PyYAML (YAML 1.1) reads "2e-4" as a string; accept any float literal for float keys
            return float(value)
        except ValueError:
            return value
    return value


def coerce(tag: str, value: Any) -> Any:
    """``value`` checked against ``tag`` and normalised (tuples -> lists, numbers -> float for float keys); raises
    ``TypeError`` when it does not fit (callers turn it into :func:`key_error` with the key and source)."""
    if tag.startswith("?"):
        if value is None:
            return None
        tag = tag[1:]
    kind, _, arg = tag.partition(":")
    if kind == "any":
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float":
        value = _number(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str) and value and (not arg or value in arg.split("|")):
        return value
    if kind == "dict" and isinstance(value, Mapping):
        return dict(value)
    if kind in ("ints", "floats", "strs") and isinstance(value, (list, tuple)) and value and (not int(arg) or len(value) == int(arg)):
        if kind == "strs":
            if all(isinstance(v, str) and v for v in value):
                return list(value)
            raise TypeError(describe(tag))
        items = [_number(v) if kind == "floats" else v for v in value]
        if all(isinstance(v, (int, float) if kind == "floats" else int) and not isinstance(v, bool) for v in items):
            return [float(v) for v in items] if kind == "floats" else list(items)
    raise TypeError(describe(tag))


def known_keys(schema: Mapping[str, Any]) -> list[str]:
    """Every dotted key of ``schema`` (a section's keys as ``section.key``)."""
    keys: list[str] = []
    for top, tags in schema.items():
        keys += [f"{top}.{sub}" for sub in tags] if isinstance(tags, Mapping) else [top]
    return keys


def unknown_key(what: str, dotted: str, source: str, schema: Mapping[str, Any],
                aliases: Mapping[str, str] | None = None) -> ValueError:
    """The one error for a key no table knows: ``unknown <what> config key '<key>' in <source> (did you mean
    '<closest known key or alias>'?); allowed: <the keys of its section>``."""
    keys = known_keys(schema) + list(aliases or {})  # a typo of an accepted spelling (optim.lrr) is offered it
    close = difflib.get_close_matches(dotted, keys, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    top = dotted.split(".")[0]
    allowed = sorted(schema[top]) if isinstance(schema.get(top), Mapping) else sorted(schema)
    prefix = f"unknown {what} config key" if what else "unknown config key"
    return ValueError(f"{prefix} '{dotted}' in {source}{hint}; allowed: {', '.join(map(str, allowed))}")


def _leaves(layer: Mapping[str, Any], schema: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """``(dotted key, value)`` of a layer: nested sections are walked, an open ``"dict"`` key given whole is one leaf."""
    for key, value in layer.items():
        top = str(key).split(".")[0]
        section = schema.get(top)
        if isinstance(value, Mapping) and "." not in str(key) and (isinstance(section, Mapping) or section is None):
            for sub, inner in flatten(value).items():
                yield f"{key}.{sub}", inner
        else:
            yield str(key), value


def apply_layers(defaults: Mapping[str, Any], layers: Iterable[Layer], schema: Mapping[str, Any],
                 what: str = "", aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``defaults`` (deep-copied) with every ``(source, mapping)`` layer applied in order, later wins. Each key must be
    in ``schema`` and fit its tag; otherwise one ``ValueError`` line names the key, the value, the source and what is
    allowed. ``what`` names the step in errors (``"downstream"`` -> ``unknown downstream config key ...``);
    ``aliases`` maps another accepted spelling to a key (``{"optim.lr": "lr"}``: every step takes the pretraining
    spelling of a shared concept)."""
    cfg = copy.deepcopy(dict(defaults))
    for source, layer in layers:
        for written, value in _leaves(layer, schema):
            dotted = (aliases or {}).get(written, written)
            top, _, sub = dotted.partition(".")
            tags = schema.get(top)
            if isinstance(tags, Mapping):  # a section: top.sub
                if not sub or "." in sub or sub not in tags:
                    raise unknown_key(what, written, source, schema, aliases)
                tag, target, name = tags[sub], cfg.setdefault(top, {}), sub
            elif tags is None or (sub and tags.lstrip("?") != "dict") or "." in sub:
                raise unknown_key(what, written, source, schema, aliases)
            elif sub:  # one entry of an open mapping (scratch_model.embed_dim)
                cfg[top] = target = dict(cfg.get(top) or {})  # a copy: never write into the defaults' dict
                tag, name = "any", sub
            else:
                tag, target, name = tags, cfg, top
            try:
                target[name] = coerce(tag, value)
            except TypeError as err:
                raise key_error(what, written, value, str(err), source) from None
    return cfg


def field_tag(annotation: Any) -> str:
    """The type tag of a :class:`Section` field annotation: ``int``/``float``/``bool``/``str``,
    ``tuple[int, int, int]`` -> ``ints:3``, ``tuple[int, ...]`` -> ``ints:0`` (``float`` -> ``floats``, ``str`` ->
    ``strs``),
    ``X | None`` -> ``?X``. ``TypeError`` for an annotation outside that set (a section field must be one of them)."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return "?" + field_tag(rest[0])
    elif typing.get_origin(annotation) is tuple and args and len(set(args) - {Ellipsis}) == 1:
        (item,) = set(args) - {Ellipsis}
        if item in (int, float, str):
            return f"{item.__name__}s:" + ("0" if Ellipsis in args else str(len(args)))
    elif annotation in (int, float, bool, str):
        return annotation.__name__
    raise TypeError(f"no config type tag for the annotation {annotation!r}")


class Section:
    """Base of the typed config sections (frozen dataclasses): checks and normalises every field on construction
    with :func:`coerce` (ints given for float fields become floats, lists become tuples) and reports a wrong type in
    the one error format (:func:`key_error`). A section declares no defaults: every value comes from the resolved
    config, so each default stays written once, in its step's table."""

    NAME: ClassVar[str] = ""  # the config section typed (``masking`` -> ``masking.<key>``); "" = a flat config's keys
    WHAT: ClassVar[str] = ""  # the step named in errors (``downstream`` -> ``downstream config key ...``)
    RESOLVER: ClassVar[str] = "smart.config.load_config"  # what fills every default (named when a key is missing)

    @classmethod
    def key(cls, name: str) -> str:
        """The dotted config key of field ``name``."""
        return f"{cls.NAME}.{name}" if cls.NAME else name

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            try:
                checked = coerce(field_tag(hints[field.name]), value)
            except TypeError as err:
                raise key_error(self.WHAT, self.key(field.name), value, str(err)) from None
            # frozen: normalise through object.__setattr__ (int -> float for float fields, list -> tuple)
            object.__setattr__(self, field.name, tuple(checked) if isinstance(checked, list) else checked)

    @classmethod
    def from_config(cls, section: Mapping[str, Any], shared: Collection[str] = ()) -> typing.Self:
        """The section of a resolved config (``cfg[NAME]``, or the flat config itself when ``NAME`` is empty).
        ``shared``: keys of the same mapping that other readers take (a flat config typed in several sections). One
        ``ValueError`` line for a key nobody reads (``unknown config key ...``) or a key the class needs that is
        missing (no default is filled in here)."""
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        allowed = set(names) | set(shared)
        unknown = sorted(set(section) - allowed)
        prefix = f"{cls.WHAT} config key" if cls.WHAT else "config key"
        if unknown:
            raise ValueError(f"unknown {prefix} '{cls.key(unknown[0])}' for the typed section {cls.__name__}; "
                             f"allowed: {', '.join(sorted(allowed))}")
        missing = [name for name in names if name not in section]
        if missing:
            raise ValueError(f"{prefix} '{cls.key(missing[0])}' is missing from the config given to "
                             f"{cls.__name__} (resolve it with {cls.RESOLVER}, which fills every default)")
        return cls(**{name: section[name] for name in names})
