"""look_up: MONAI's look_up_option over a registry, its error on one line and prefixed (smart/registry.py)."""

from __future__ import annotations

import pytest

from smart.registry import look_up

TABLE = {"attention_high": 1, "random": 2}


def test_known_name_returns_its_entry():
    assert look_up("masking.strategy", "random", TABLE) == 2


@pytest.mark.parametrize("name, needle", [
    ("attenton_high", "By 'attenton_high', did you mean 'attention_high'?"),
    ("zzz", "Unsupported option 'zzz'"),
    (None, "Unsupported option 'None'"),
])
def test_unknown_name_is_one_line_naming_the_key_and_the_choices(name, needle):
    with pytest.raises(ValueError) as err:
        look_up("masking.strategy", name, TABLE)
    text = str(err.value)
    assert text.startswith("masking.strategy: ") and needle in text and "\n" not in text
    assert "'attention_high'" in text and "'random'" in text
