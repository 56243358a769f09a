"""Validating the workflow config against config/schema.yaml with a one-line error (key, value, what is allowed),
filling the schema's defaults into it, and typing the values of Snakemake's ``--config`` the way a config file
would be read."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from smart.overlay import key_error


def resolve_ref(schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """A local ``$ref`` ("#/definitions/<name>") resolved; keys beside the ``$ref`` (a group's own ``default``)
    win."""
    if "$ref" not in schema:
        return dict(schema)
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**definitions[os.path.basename(schema["$ref"])], **siblings}


def fill_defaults(node: Any, schema: Mapping[str, Any], definitions: Mapping[str, Any]) -> None:
    """Insert schema defaults at every depth, in place: snakemake's ``validate()`` fills a missing section with its
    default ``{}`` but not that section's own keys. A mapping default (a resource group's) also fills the keys a
    partial block leaves out, so ``resources: {embed: {gpu: 1}}`` keeps embed's documented runtime and memory."""
    schema = resolve_ref(schema, definitions)
    if not isinstance(node, dict) or schema.get("type") != "object":
        return
    for key, sub in schema.get("properties", {}).items():
        resolved = resolve_ref(sub, definitions)
        default = resolved.get("default")
        if key not in node and "default" in resolved:
            node[key] = copy.deepcopy(default)
        elif isinstance(node.get(key), dict) and isinstance(default, dict):
            for k, v in default.items():
                node[key].setdefault(k, copy.deepcopy(v))
        if key in node:
            fill_defaults(node[key], resolved, definitions)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in set(node) - set(schema.get("properties", {})):
            fill_defaults(node[key], extra, definitions)


def yaml_typed(value: Any) -> Any:
    """A ``--config`` value with its nested scalars read as YAML: Snakemake parses a nested ``--config`` value with
    YAML's BaseLoader, which leaves every scalar a string (``pretrain='{max_steps: 50}'`` gives max_steps '50'), so
    each string below the top level is read again with ``safe_load``, as a config file would be. An empty string
    and a string that reads as a mapping or list stay strings."""
    if isinstance(value, dict):
        return {k: yaml_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [yaml_typed(v) for v in value]
    if isinstance(value, str) and value:
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return value if isinstance(typed, (dict, list)) else typed
    return value


def typed_command_line(command_line: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--config`` entries with YAML-typed nested values (top-level values are already typed by
    Snakemake); re-applied as the last layer."""
    return {k: (yaml_typed(v) if isinstance(v, (dict, list)) else v) for k, v in dict(command_line).items()}


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(map(str, path)) or "<top level>"


def _allowed(error: Any) -> str:
    """What ``error``'s validator allows, in words (its own message where no shorter wording fits)."""
    rule, bound = error.validator, error.validator_value
    words = {"minimum": f">= {bound}", "maximum": f"<= {bound}", "exclusiveMinimum": f"> {bound}",
             "exclusiveMaximum": f"< {bound}", "minItems": f"at least {bound} item(s)",
             "maxItems": f"at most {bound} item(s)", "minLength": f"at least {bound} character(s)",
             "minProperties": f"at least {bound} key(s)", "pattern": f"matching {bound!r}", "const": repr(bound)}
    if rule == "enum":
        return f"one of {', '.join(map(repr, bound))}"
    if rule == "type":
        return " or ".join(bound) if isinstance(bound, list) else str(bound)
    return words.get(rule, error.message)


def schema_error(error: Any) -> ValueError:
    """One line for a jsonschema ``ValidationError``: the dotted key, the value and what is allowed there (for an
    unknown key: the known keys at that level and the closest one, as smart.overlay reports a pretraining key)."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known), key=str)[0]
        close = difflib.get_close_matches(str(unknown), known, n=1)
        hint = f" (did you mean '{_dotted(where + [close[0]])}'?)" if close else ""
        value = repr(error.instance[unknown])
        value = value if len(value) <= 60 else value[:57] + "..."
        return ValueError(f"unknown config key '{_dotted(where + [unknown])}' (value {value}){hint}; allowed at "
                          f"{_dotted(where)}: {', '.join(known)}")
    if "propertyNames" in error.schema_path:  # the key itself is malformed; error.instance is the key
        return key_error("", _dotted(where + [error.instance]), error.instance, f"a key {_allowed(error)}")
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return ValueError(f"config key '{_dotted(where + missing[:1])}' is required and missing")
    return key_error("", _dotted(where), error.instance, _allowed(error))


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """``config`` against config/schema.yaml (the draft it names); ``ValueError`` (:func:`schema_error`'s one line)
    for the most relevant error (``jsonschema.exceptions.best_match``). Imports no torch."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise schema_error(error)
