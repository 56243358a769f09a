"""The card table: memory of each listed card, explicit gpu_mem_gb, one clear error for an unknown or ambiguous model."""

from __future__ import annotations

import pytest

from smart.resources.cards import CARDS, card_from_device_name, card_memory_gib, smallest_card


def test_the_six_cards_and_their_memory():
    assert {k: c.memory_gib for k, c in CARDS.items()} == {"a100_40": 40.0, "a100_80": 80.0, "a40": 48.0, "l40s": 48.0,
                                                          "h100": 80.0, "h200": 141.0}


def test_listed_card_explicit_memory_and_any_card():
    assert card_memory_gib("a40", None, "resources.finetune") == ("a40", 48.0)
    assert card_memory_gib("H100", None, "resources.pretrain") == ("h100", 80.0)
    # gpu_mem_gb wins (a site's own gres name, a MIG slice)
    assert card_memory_gib("a100", 80, "resources.pretrain") == ("a100", 80.0)
    assert card_memory_gib("mig-3g.40gb", 40, "resources.embed") == ("mig-3g.40gb", 40.0)
    # no gpu_model: any card of the partition, so the smallest listed one
    assert smallest_card().name == "a100_40"
    assert card_memory_gib("", None, "resources.embed") == ("any (smallest listed: a100_40)", 40.0)


@pytest.mark.parametrize("model, words", [
    ("v100", ["resources.finetune.gpu_model='v100'", "not in the card table", "resources.finetune.gpu_mem_gb"]),
    ("a100", ["resources.finetune.gpu_model='a100'", "40 or 80 GiB", "a100_40 or a100_80"]),
])
def test_unknown_or_ambiguous_model_is_one_clear_line(model, words):
    with pytest.raises(ValueError) as err:
        card_memory_gib(model, None, "resources.finetune")
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_non_positive_memory_is_refused():
    with pytest.raises(ValueError, match=r"resources.embed.gpu_mem_gb=0 must be > 0"):
        card_memory_gib("a40", 0, "resources.embed")


def test_device_names_map_to_table_keys():
    assert card_from_device_name("NVIDIA H100 80GB HBM3", 79.1) == "h100"
    assert card_from_device_name("NVIDIA A100-SXM4-40GB", 39.4) == "a100_40"
    assert card_from_device_name("NVIDIA A100-SXM4-80GB", 79.2) == "a100_80"
    assert card_from_device_name("NVIDIA L40S", 44.4) == "l40s"
    assert card_from_device_name("NVIDIA A40", 44.4) == "a40"
    assert card_from_device_name("Tesla V100-SXM2-32GB", 31.7) is None
