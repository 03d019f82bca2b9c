"""The small set of errors a user can meet, each said in one sentence with what to do next.

Services map LiteLLM, httpx and server errors onto these; the UI shows `message` and `action`
and never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DomainError(Exception):
    """Base: a one-sentence message and a suggested action."""

    message: str
    action: str = ""

    def __str__(self) -> str:
        return self.message

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class AuthFailed(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class PermissionDenied(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class ModelNotFound(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class RateLimited(DomainError):
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ContextTooLong(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class Unreachable(DomainError):
    url: str = ""


@dataclass(frozen=True, slots=True)
class TimedOut(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class ServerError(DomainError):
    status: int | None = None


@dataclass(frozen=True, slots=True)
class MalformedResponse(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class BadRequest(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class NoKey(DomainError):
    pass


@dataclass(frozen=True, slots=True)
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
