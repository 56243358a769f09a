"""Typed downstream sections (issue 21, item 1): fine-tuning and the probe read FinetuneSection / ProbeSection, whose
fields (with the scratch-encoder keys) are exactly the keys of smart.downstream.protocol's table with the same tags;
segmentation reads SegmentationSection, whose fields (with the network keys) are exactly the keys of
smart.downstream.segmentation's table. They carry the resolved values unchanged, and a wrong type, an unknown or a
missing key is one line in the step's error format."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from smart.downstream.protocol import DEFAULTS, TYPES, load_downstream_config
from smart.downstream import segmentation
from smart.downstream.sections import (NETWORK_KEYS, SCRATCH_KEYS, FinetuneSection, ProbeSection, SegmentationSection,
                                       finetune_section, probe_section, segmentation_section)
from smart.overlay import field_tag

SECTIONS = (FinetuneSection, ProbeSection)


def fields(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_the_sections_and_the_scratch_keys_cover_the_table_key_for_key():
    covered = set(SCRATCH_KEYS).union(*(fields(cls) for cls in SECTIONS))
    assert covered == set(DEFAULTS) == set(TYPES)
    assert not set(SCRATCH_KEYS) & set().union(*(fields(cls) for cls in SECTIONS))
    # only the keys one of them reads: the probe's knobs are not fine-tuning's and the reverse
    assert {"probe_C", "probe_max_iter", "feature_batch_size"} - set(fields(FinetuneSection)) == {
        "probe_C", "probe_max_iter", "feature_batch_size"}
    assert not {"epochs", "lr", "batch_size", "selection", "patience"} & set(fields(ProbeSection))


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_section_fields_have_the_table_types_and_no_defaults(cls):
    hints = typing.get_type_hints(cls)
    for name in fields(cls):
        # a choice ("str:a|b") is a str field: the choice is checked by load_downstream_config
        assert field_tag(hints[name]) == re.sub(r"^(\??str):.*$", r"\1", TYPES[name]), name
    assert fields(cls) == [key for key in DEFAULTS if key in fields(cls)]  # the table's order
    assert not [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING]  # defaults live in protocol.DEFAULTS only


@pytest.mark.parametrize("overrides", [[], ["micro_batch_size=4", "patience=2", "probe_C=[1, 2]", "lr=1e-3",
                                            "crop_size=[32,48,64]", "scratch_model.embed_dim=12"]])
def test_sections_carry_the_resolved_values(overrides):
    cfg = load_downstream_config(None, overrides)
    for section in (finetune_section(cfg), probe_section(cfg)):
        values = dataclasses.asdict(section)
        assert {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()} == {
            k: cfg[k] for k in values}
    ft = finetune_section(cfg)
    assert ft.micro_batch == (4 if overrides else 40)
    assert type(probe_section(cfg).probe_C[0]) is float and type(ft.lr) is float


def test_a_wrong_type_is_one_line_in_the_downstream_error_format():
    with pytest.raises(ValueError) as from_config:
        load_downstream_config(None, ["lr=fast"])
    cfg = load_downstream_config(None)
    cfg["lr"] = "fast"  # a hand-edited config: the section checks it with the same words
    with pytest.raises(ValueError) as from_section:
        finetune_section(cfg)
    assert str(from_section.value) == "downstream config key 'lr': expected a number, got 'fast'"
    assert str(from_config.value) == str(from_section.value) + " (from --set)"
    cfg = load_downstream_config(None)
    cfg["probe_C"] = [0.1, "big"]
    with pytest.raises(ValueError, match=r"^downstream config key 'probe_C': expected a list of one or more "
                                         r"numbers, got \[0.1, 'big'\]$"):
        probe_section(cfg)


def test_unknown_and_missing_keys_are_named():
    cfg = load_downstream_config(None)
    cfg["epoch"] = 3
    with pytest.raises(ValueError, match=r"^unknown downstream config key 'epoch' for the typed section "
                                         r"FinetuneSection; allowed: activation_checkpointing, augment, "):
        finetune_section(cfg)
    cfg = load_downstream_config(None)
    del cfg["probe_max_iter"]
    finetune_section(cfg)  # fine-tuning does not read it
    with pytest.raises(ValueError, match=r"^downstream config key 'probe_max_iter' is missing from the config given "
                                         r"to ProbeSection \(resolve it with smart.downstream.protocol."
                                         r"load_downstream_config"):
        probe_section(cfg)


def test_sections_are_frozen():
    section = finetune_section(load_downstream_config(None))
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.lr = 1.0  # type: ignore[misc]
    assert section.crop_size == tuple(DEFAULTS["crop_size"])


# ---------------------------------------------------------------------------------------------- segmentation
def test_segmentation_section_and_the_network_keys_cover_the_table_key_for_key_with_its_tags():
    names = fields(SegmentationSection)
    assert set(names) | set(NETWORK_KEYS) == set(segmentation.DEFAULTS) == set(segmentation.TYPES)
    assert not set(names) & set(NETWORK_KEYS)
    assert names == [key for key in segmentation.DEFAULTS if key in names]  # the table's order
    hints = typing.get_type_hints(SegmentationSection)
    assert {name: field_tag(hints[name]) for name in names} == {name: segmentation.TYPES[name] for name in names}
    assert not [f for f in dataclasses.fields(SegmentationSection) if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING]  # defaults live in segmentation.DEFAULTS only


@pytest.mark.parametrize("overrides", [[], ["structures=[lung, tumour]", "spacing=null", "lr=3e-4", "steps=7",
                                            "crop_size=[64, 96, 128]", "overlap=0", "model.embed_dim=24"]])
def test_segmentation_section_carries_the_resolved_values(overrides):
    cfg = segmentation.load_segmentation_config(None, overrides)
    section = segmentation_section(cfg)
    values = dataclasses.asdict(section)
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()} == {
        k: v for k, v in cfg.items() if k not in NETWORK_KEYS}
    if overrides:
        assert section.structures == ("lung", "tumour") and section.spacing is None and section.steps == 7
        assert section.crop_size == (64, 96, 128) and type(section.overlap) is float and section.lr == 3e-4


def test_a_wrong_segmentation_type_is_one_line_in_the_segmentation_error_format():
    with pytest.raises(ValueError) as from_config:
        segmentation.load_segmentation_config(None, ["overlap=half"])
    cfg = segmentation.load_segmentation_config(None)
    cfg["overlap"] = "half"  # a hand-edited config.json: the section checks it with the same words
    with pytest.raises(ValueError) as from_section:
        segmentation_section(cfg)
    assert str(from_section.value) == "segmentation config key 'overlap': expected a number, got 'half'"
    assert str(from_config.value) == str(from_section.value) + " (from --set)"
    cfg = segmentation.load_segmentation_config(None)
    cfg["structures"] = ["lung", 3]
    with pytest.raises(ValueError, match=r"^segmentation config key 'structures': expected a list of one or more "
                                         r"non-empty strings, got \['lung', 3\]$"):
        segmentation_section(cfg)
    with pytest.raises(ValueError, match=r"^segmentation config key 'structures': expected a list of one or more "
                                         r"non-empty strings, got 'lung' \(from --set\)$"):
        segmentation.load_segmentation_config(None, ["structures=lung"])
    with pytest.raises(ValueError, match=r"^segmentation config key 'structures': expected a list of distinct names, "
                                         r"got \['lung', 'lung'\]$"):
        segmentation.load_segmentation_config(None, ["structures=[lung, lung]"])


def test_segmentation_unknown_and_missing_keys_are_named():
    cfg = segmentation.load_segmentation_config(None)
    cfg["stepz"] = 3
    with pytest.raises(ValueError, match=r"^unknown segmentation config key 'stepz' for the typed section "
                                         r"SegmentationSection; allowed: batch_size, checkpoint_every, "):
        segmentation_section(cfg)
    cfg = segmentation.load_segmentation_config(None)
    del cfg["model"]
    segmentation_section(cfg)  # the network keys are model_config's, not the section's
    del cfg["val_every"]
    with pytest.raises(ValueError, match=r"^segmentation config key 'val_every' is missing from the config given to "
                                         r"SegmentationSection \(resolve it with smart.downstream.segmentation."
                                         r"load_segmentation_config"):
        segmentation_section(cfg)


def test_segmentation_section_is_frozen():
    section = segmentation_section(segmentation.load_segmentation_config(None))
    with pytest.raises(dataclasses.FrozenInstanceError):
        section.lr = 1.0  # type: ignore[misc]
    assert section.structures == tuple(segmentation.DEFAULTS["structures"])
