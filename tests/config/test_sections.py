"""Typed config sections (issue 21, item 1): every section's fields are exactly the keys of ``smart.config.SCHEMA``
with the same types, they carry the resolved values of every method x preset unchanged, and a wrong type, an
unknown or a missing key is one line in the one error format."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from smart.config import SCHEMA, load_config
from smart.ssl.methods import method_names
from smart.ssl.sections import (SECTIONS, DataSection, MaskingSection, NoisyTeacherSection, PretrainSections,
                                field_tag, pretrain_sections)

from resolved_configs import PRESETS_TRIED


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_section_fields_are_the_schema_keys_with_the_schema_types(name):
    cls = SECTIONS[name]
    assert [f.name for f in dataclasses.fields(cls)] == list(SCHEMA[name]), name  # same keys, same order
    resolved = typing.get_type_hints(cls)
    for key, tag in SCHEMA[name].items():
        # a registry choice ("str:a|b") is a str field: the name is checked where it is looked up
        assert field_tag(resolved[key]) == re.sub(r"^(\??str):.*$", r"\1", tag), f"{name}.{key}"
    assert not [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING]  # defaults live in smart.config.DEFAULTS only


def test_every_section_of_the_config_is_typed_but_the_model_table():
    assert set(SCHEMA) - set(SECTIONS) == {"model"}  # the encoder factory takes the model table as a mapping
    assert [f.name for f in dataclasses.fields(PretrainSections)] == list(SECTIONS)


def test_sections_carry_every_resolved_value_of_every_method_and_preset():
    for method in method_names():
        for preset in PRESETS_TRIED:
            cfg = load_config(method, preset)
            sections = pretrain_sections(cfg)
            for name in SECTIONS:
                values = dataclasses.asdict(getattr(sections, name))
                assert {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()} == cfg[name], (
                    method, preset, name)
                # a float key holds a float even where the default is written as an int
                for key, tag in SCHEMA[name].items():
                    if tag.lstrip("?") == "float" and values[key] is not None:
                        assert type(values[key]) is float, (name, key)


def test_a_wrong_type_is_one_line_in_the_config_error_format():
    with pytest.raises(ValueError) as from_config:
        load_config("smart", "tiny", None, ["masking.ratio=high"])
    with pytest.raises(ValueError) as from_section:
        MaskingSection(strategy="random", ratio="high", hint_ratio=0.1, hints="top")
    assert str(from_section.value) == "config key 'masking.ratio': expected a number, got 'high'"
    assert str(from_config.value) == str(from_section.value) + " (from --set)"  # the same format, one source
    with pytest.raises(ValueError, match=r"^config key 'noisy_teacher.unit': expected an integer, got True$"):
        NoisyTeacherSection(drop_ratio=0.7, unit=True)
    crop_error = r"^config key 'data.crop_size': expected a list of 3 integers, got \[32, 32\]$"
    with pytest.raises(ValueError, match=crop_error):
        DataSection(crop_size=[32, 32], batch_size=2, num_workers=0, cache=True, view_offset=None, group=None)
    # a hand-edited config (e.g. a run's config.json) is checked the same way by the one function
    cfg = load_config("smart", "tiny")
    cfg["train"]["seed"] = "0"
    with pytest.raises(ValueError, match=r"^config key 'train.seed': expected an integer, got '0'$"):
        pretrain_sections(cfg)


def test_unknown_or_missing_keys_and_sections_are_named():
    cfg = load_config("smart", "tiny")
    cfg["ema"]["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"^unknown config key 'ema.momentum' for the typed section EMASection; "
                                         r"allowed: momentum_end, momentum_start$"):
        pretrain_sections(cfg)
    cfg = load_config("smart", "tiny")
    del cfg["loss"]["koleo"]
    with pytest.raises(ValueError, match=r"^config key 'loss.koleo' is missing from the config given to LossSection"):
        pretrain_sections(cfg)
    cfg = load_config("smart", "tiny")
    del cfg["optim"]
    with pytest.raises(ValueError, match=r"^config section 'optim' is missing from the pretraining config"):
        pretrain_sections(cfg)


def test_sections_are_frozen_and_normalised():
    noisy = NoisyTeacherSection(drop_ratio=1, unit=16)
    assert noisy.drop_ratio == 1.0 and type(noisy.drop_ratio) is float
    with pytest.raises(dataclasses.FrozenInstanceError):
        noisy.unit = 8  # type: ignore[misc]
    data = DataSection(crop_size=[32, 32, 32], batch_size=2, num_workers=0, cache=True, view_offset=None, group=None)
    assert data.crop_size == (32, 32, 32)  # immutable, so a section is hashable and cannot be edited by a reader
    assert hash(data) == hash(dataclasses.replace(data))
