"""The small set of errors a user can meet, each said in one sentence with what to do next.

Services map LiteLLM, httpx and server errors onto these; the UI shows `message` and `action`
and never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from typing_extensions import dataclass_transform

E = TypeVar("E", bound=type)
# What Python itself sets on an exception that passes through code (contextlib's `__aexit__` sets
# `__traceback__`, `add_note` sets `__notes__`): a frozen dataclass would refuse them.
_EXCEPTION_STATE = frozenset({"__traceback__", "__cause__", "__context__", "__suppress_context__", "__notes__"})


@dataclass_transform(frozen_default=True)
def domain_error(cls: E) -> E:
    """`@dataclass(frozen=True, slots=True)` for a DomainError: its fields cannot change, and it
    still passes through `with` blocks and `add_note` as any exception does."""
    made: Any = dataclass(frozen=True, slots=True)(cls)
    frozen_setattr = made.__setattr__

    def __setattr__(self: BaseException, name: str, value: Any) -> None:
        if name in _EXCEPTION_STATE:
            BaseException.__setattr__(self, name, value)
        else:
            frozen_setattr(self, name, value)

    made.__setattr__ = __setattr__
    return made  # type: ignore[no-any-return]


@domain_error
class DomainError(Exception):
    """Base: a one-sentence message and a suggested action."""

    message: str
    action: str = ""

    def __str__(self) -> str:
        return self.message

    @property
    def kind(self) -> str:
        return type(self).__name__


@domain_error
class AuthFailed(DomainError):
    pass


@domain_error
class PermissionDenied(DomainError):
    pass


@domain_error
class ModelNotFound(DomainError):
    pass


@domain_error
class RateLimited(DomainError):
    retry_after: float | None = None


@domain_error
class ContextTooLong(DomainError):
    pass


@domain_error
class Unreachable(DomainError):
    url: str = ""


@domain_error
class TimedOut(DomainError):
    pass


@domain_error
class ServerError(DomainError):
    status: int | None = None


@domain_error
class MalformedResponse(DomainError):
    pass


@domain_error
class BadRequest(DomainError):
    pass


@domain_error
class NoKey(DomainError):
    pass


@domain_error
class StorageFailed(DomainError):
    """One of our own SQLite files could not be read or written; `cause` says why.

    `cause` is "locked", "full", "io", "damaged", "readonly" or "unavailable"; `problem` is the
    sentence without its full stop, so a caller can add what it kept (`kept("your message is kept")`).
    """

    cause: str = ""
    problem: str = ""

    def kept(self, what: str) -> StorageFailed:
        return StorageFailed(f"{self.problem}; {what}.", self.action, self.cause, self.problem)


ERROR_KINDS: dict[str, type[DomainError]] = {
    cls.__name__: cls
    for cls in (
        DomainError,
        AuthFailed,
        PermissionDenied,
        ModelNotFound,
        RateLimited,
        ContextTooLong,
        Unreachable,
        TimedOut,
        ServerError,
        MalformedResponse,
        BadRequest,
        NoKey,
        StorageFailed,
    )
}
