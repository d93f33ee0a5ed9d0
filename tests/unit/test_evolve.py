"""evolve(): dataclasses.replace for the hot paths' plain records."""

from __future__ import annotations

import dataclasses

import pytest

from interlock.domain.evolve import evolve


@dataclasses.dataclass(frozen=True)
class Record:
    name: str
    count: int = 0
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")


def test_a_copy_with_the_changes_and_the_original_untouched() -> None:
    original = Record("a", 1, ("x",))
    copy = evolve(original, count=2)
    assert copy == Record("a", 2, ("x",)) == dataclasses.replace(original, count=2)
    assert original == Record("a", 1, ("x",))
    assert type(copy) is Record and copy is not original
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.count = 3  # type: ignore[misc]


def test_an_unknown_field_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        evolve(Record("a"), colour="red")


def test_a_class_that_checks_its_fields_is_refused() -> None:
    # Its __init__ would not run again, so a copy could hold what it forbids.
    with pytest.raises(TypeError, match="plain dataclasses"):
        evolve(Checked(1), value=-1)
