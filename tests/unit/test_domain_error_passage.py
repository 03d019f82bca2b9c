"""A DomainError is a frozen value, and still an exception Python can carry: through an
`async with` of an `@asynccontextmanager` (httpx's streams are such blocks, and contextlib sets the
error's `__traceback__` there) and through `add_note`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import pkgutil
import sys
from collections.abc import AsyncIterator

import pytest

import desktop_app.domain
import desktop_app.services
from desktop_app.domain.errors import DomainError, StorageFailed


def _every_domain_error() -> list[type[DomainError]]:
    for package in (desktop_app.domain, desktop_app.services):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    seen: list[type[DomainError]] = []
    todo: list[type[DomainError]] = [DomainError]
    while todo:
        cls = todo.pop()
        # `dataclass(slots=True)` builds a new class; the one it replaced lingers among the subclasses.
        if getattr(sys.modules[cls.__module__], cls.__qualname__, None) is cls:
            seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def _instance(cls: type[DomainError]) -> DomainError:
    return cls("It went wrong.", "Try again.")


@contextlib.asynccontextmanager
async def _block() -> AsyncIterator[None]:
    yield


async def _raise_inside(error: DomainError) -> None:
    async with _block():
        raise error


ERRORS = _every_domain_error()


def test_every_domain_error_of_the_app_is_found() -> None:
    assert StorageFailed in ERRORS and len(ERRORS) > 20


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__qualname__)
def test_a_domain_error_passes_through_an_async_with_block_and_takes_notes(cls: type[DomainError]) -> None:
    error = _instance(cls)
    with pytest.raises(cls) as raised:
        asyncio.run(_raise_inside(error))
    assert raised.value is error and error.__traceback__ is not None

    error.add_note("seen by the test")
    assert error.__notes__ == ["seen by the test"]
    if dataclasses.is_dataclass(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            error.message = "changed"  # type: ignore[misc]
    assert error.message == "It went wrong."
