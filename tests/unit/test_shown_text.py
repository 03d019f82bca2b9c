"""Bidirectional controls in names the user types: U+202E before "exe.txt" shows it as "txt.exe"."""

from __future__ import annotations

import pydantic
import pytest

from desktop_app.domain.accounts import Account
from desktop_app.domain.pools import Pool
from desktop_app.domain.text import BIDI_CONTROLS, without_bidi_controls


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_account_and_pool_labels_lose_every_bidi_control(control: str) -> None:
    assert Account(provider_id="openai", label=f"{control}exe.txt").label == "exe.txt"
    assert Pool(label=f"team {control}fdp.scod", provider_id="openai").label == "team fdp.scod"


def test_a_label_of_bidi_controls_only_is_blank() -> None:
    with pytest.raises(pydantic.ValidationError, match="an account needs a name"):
        Account(provider_id="openai", label="\u202e\u2066 ")
    with pytest.raises(pydantic.ValidationError, match="a pool needs a name"):
        Pool(label="\u202d", provider_id="openai")


def test_right_to_left_writing_keeps_its_letters_and_marks() -> None:
    hebrew = "\u05e9\u05dc\u05d5\u05dd\u200f (1)"  # shalom, a right-to-left mark, a number
    assert without_bidi_controls(hebrew) == hebrew
    assert Account(provider_id="openai", label=hebrew).label == hebrew
