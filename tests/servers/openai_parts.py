"""OpenAI's error answers and the content parts of a user message, checked as OpenAI documents them.

User messages may carry content parts (platform.openai.com/docs/api-reference/chat/create,
"ChatCompletionRequestUserMessageContentPart"; platform.openai.com/docs/guides/images-vision and
/docs/guides/pdf-files): `text` {text}, `image_url` {url: an http(s) URL or a
`data:image/(png|jpeg|gif|webp);base64,...` URL, detail: low|high|auto}, `input_audio` and
`file` {file_data: a `data:<type>;base64,...` URL, or file_id; filename}. A part of another type,
or one missing a field, is refused with OpenAI's 400 invalid_request_error, `param` naming the
field (`messages[0].content[1].image_url.url`), worded as OpenAI words it in answers seen in the
wild (e.g. "Invalid image URL: ... Expected a base64-encoded data URL with an image MIME type").
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
USER_PART_TYPES = ("text", "image_url", "input_audio", "file")
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
IMAGE_DETAILS = ("auto", "low", "high")
_DATA_URL_EXAMPLE = "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='"


class ApiError(Exception):
    """An error response with OpenAI's body."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers
        self.payload = {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _json_type(value: Any) -> str:
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a decimal"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    ):
        if isinstance(value, kind):
            return name
    return "null"


def _invalid_value(value: Any, allowed: tuple[str, ...], param: str) -> ApiError:
    listed = ", ".join(f"'{v}'" for v in allowed[:-1]) + f", and '{allowed[-1]}'"
    return ApiError(
        400, f"Invalid value: {value!r}. Supported values are: {listed}.", param=param, code="invalid_value"
    )


def _check_parts(parts: list[Any], where: str, role: str) -> None:
    """A message's content parts, as OpenAI checks them (see the module docstring)."""
    allowed = USER_PART_TYPES if role == "user" else ("text", "refusal") if role == "assistant" else ("text",)
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise ApiError(
                400,
                f"Invalid type for '{at}': expected an object, but got {_json_type(part)} instead.",
                param=at,
                code="invalid_type",
            )
        kind = part.get("type")
        if kind is None:
            raise ApiError(
                400, f"Missing required parameter: '{at}.type'.", param=f"{at}.type", code="missing_required_parameter"
            )
        if kind not in PART_TYPES:
            raise _invalid_value(kind, PART_TYPES, f"{at}.type")
        if kind not in allowed:
            raise ApiError(
                400,
                f"Invalid 'content[{j}]':  content type '{kind}' is not supported for messages with role '{role}'.",
                param=at,
                code="invalid_value",
            )
        if unknown := sorted(set(part) - {"type", kind}):
            raise ApiError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}", param=at)
        if kind not in part:
            raise ApiError(
                400,
                f"Missing required parameter: '{at}.{kind}'.",
                param=f"{at}.{kind}",
                code="missing_required_parameter",
            )
        value = part[kind]
        if kind in ("text", "refusal"):
            if not isinstance(value, str):
                raise ApiError(
                    400,
                    f"Invalid type for '{at}.{kind}': expected a string, but got {_json_type(value)} instead.",
                    param=f"{at}.{kind}",
                    code="invalid_type",
                )
        elif kind == "image_url":
            _check_image_url(value, f"{at}.image_url")
        elif kind == "file":
            _check_file(value, f"{at}.file")


def _check_image_url(value: Any, at: str) -> None:
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f"Invalid type for '{at}': expected an object, but got {_json_type(value)} instead.",
            param=at,
            code="invalid_type",
        )
    if unknown := sorted(set(value) - {"url", "detail"}):
        raise ApiError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}", param=at)
    if "url" not in value:
        raise ApiError(
            400, f"Missing required parameter: '{at}.url'.", param=f"{at}.url", code="missing_required_parameter"
        )
    if "detail" in value and value["detail"] not in IMAGE_DETAILS:
        raise _invalid_value(value["detail"], IMAGE_DETAILS, f"{at}.detail")
    url = value["url"]
    if not isinstance(url, str):
        raise ApiError(
            400,
            f"Invalid type for '{at}.url': expected a string, but got {_json_type(url)} instead.",
            param=f"{at}.url",
            code="invalid_type",
        )
    if url.startswith(("http://", "https://")):
        return  # fetched by OpenAI; never here

    def refused(what: str) -> ApiError:
        return ApiError(
            400,
            f"Invalid image URL: '{at}.url'. Expected a base64-encoded data URL with an image MIME type "
            f"(e.g. {_DATA_URL_EXAMPLE}), but got {what}.",
            param=f"{at}.url",
            code="invalid_value",
        )

    if not url.startswith("data:"):
        raise refused("a value without the 'data:' prefix")
    head, sep, data = url[5:].partition(";base64,")
    if not sep:
        raise refused("a value without ';base64,'")
    if head not in IMAGE_MEDIA_TYPES:
        raise refused(f"unsupported MIME type '{head}'")
    if not data:
        raise refused("empty base64-encoded bytes")
    if _b64(data) is None:
        raise refused("invalid base64-encoded bytes")


def _check_file(value: Any, at: str) -> None:
    if not isinstance(value, dict):
        raise ApiError(
            400,
            f"Invalid type for '{at}': expected an object, but got {_json_type(value)} instead.",
            param=at,
            code="invalid_type",
        )
    if unknown := sorted(set(value) - {"file_data", "file_id", "filename"}):
        raise ApiError(400, f"Unrecognized request argument supplied: {', '.join(unknown)}", param=at)
    for name in ("file_data", "file_id", "filename"):
        if name in value and not isinstance(value[name], str):
            raise ApiError(
                400,
                f"Invalid type for '{at}.{name}': expected a string, but got {_json_type(value[name])} instead.",
                param=f"{at}.{name}",
                code="invalid_type",
            )
    if "file_id" in value:
        return
    if "file_data" not in value:
        raise ApiError(
            400,
            f"Missing required parameter: '{at}.file_id' or '{at}.file_data'.",
            param=at,
            code="missing_required_parameter",
        )
    head, sep, data = value["file_data"].partition(";base64,")
    if not head.startswith("data:") or not sep or _b64(data) is None:
        raise ApiError(
            400,
            f"Invalid file data: '{at}.file_data'. Expected a base64-encoded data URL with a MIME type "
            "(e.g. 'data:application/pdf;base64,SGVsbG8sIFdvcmxkIQ=='), but got an invalid value.",
            param=f"{at}.file_data",
            code="invalid_value",
        )
    if "filename" not in value:
        raise ApiError(
            400,
            f"Missing required parameter: '{at}.filename'.",
            param=f"{at}.filename",
            code="missing_required_parameter",
        )


def _b64(text: str) -> bytes | None:
    """Strict base64 (padding, alphabet); None if it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
