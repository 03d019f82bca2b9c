"""The loopback servers read attached content as the providers do: what they take, and the 400 each
gives for what they refuse (OpenAI content parts, Anthropic image and document blocks, Ollama's
base64 images)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers.anthropic_blocks import MAX_IMAGE_BASE64
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.ollama_server import OllamaServer
from tests.servers.openai_fault import FaultServer
from tests.unit.test_attachments import minimal_pdf, png

PNG = png(4, 3, alpha=False)
PDF = minimal_pdf("Hi")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- OpenAI ------------------------------------------------------------------------------------------


@pytest.fixture
def openai() -> Iterator[httpx.Client]:
    with (
        FaultServer() as server,
        httpx.Client(base_url=server.base_url, headers={"authorization": "Bearer sk-test"}, timeout=10) as client,
    ):
        yield client


def openai_chat(client: httpx.Client, *parts: dict[str, Any]) -> httpx.Response:
    body = {"model": "ok", "messages": [{"role": "user", "content": [{"type": "text", "text": "Look"}, *parts]}]}
    return client.post("/chat/completions", json=body)


def test_openai_takes_image_urls_data_urls_and_files(openai: httpx.Client) -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{b64(PDF)}"}},
        {"type": "file", "file": {"file_id": "file-abc123"}},
    ]
    assert openai_chat(openai, *parts).status_code == 200


@pytest.mark.parametrize(
    ("part", "param", "message"),
    [
        (
            {"type": "picture", "picture": {}},
            "messages[0].content[1].type",
            "Invalid value: 'picture'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal',"
            " 'audio', and 'file'.",
        ),
        (
            {"type": "image_url", "image_url": {"url": b64(PNG)}},
            "messages[0].content[1].image_url.url",
            "Invalid image URL: 'messages[0].content[1].image_url.url'. Expected a base64-encoded data URL with"
            " an image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value without"
            " the 'data:' prefix.",
        ),
        (
            {"type": "image_url", "image_url": {"url": f"data:image/bmp;base64,{b64(PNG)}"}},
            "messages[0].content[1].image_url.url",
            None,
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,not base64!"}},
            "messages[0].content[1].image_url.url",
            None,
        ),
        (
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}", "detail": "max"}},
            "messages[0].content[1].image_url.detail",
            None,
        ),
        ({"type": "image_url", "image_url": {}}, "messages[0].content[1].image_url.url", None),
        ({"type": "file", "file": {"filename": "a.pdf"}}, "messages[0].content[1].file", None),
    ],
)
def test_openai_refuses_a_malformed_part_naming_it(
    openai: httpx.Client, part: dict[str, Any], param: str, message: str | None
) -> None:
    reply = openai_chat(openai, part)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    if message is not None:
        assert error["message"] == message


def test_openai_takes_no_image_in_a_system_message(openai: httpx.Client) -> None:
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}}
    reply = openai.post("/chat/completions", json={"model": "ok", "messages": [{"role": "system", "content": [image]}]})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "messages[0].content[0]"


# --- Anthropic ---------------------------------------------------------------------------------------


@pytest.fixture
def anthropic() -> Iterator[httpx.Client]:
    headers = {"x-api-key": "sk-ant-test-a", "anthropic-version": "2023-06-01"}
    with AnthropicServer() as server, httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
        yield client


def anthropic_chat(client: httpx.Client, *blocks: dict[str, Any]) -> httpx.Response:
    content = [{"type": "text", "text": "Look"}, *blocks]
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": content}]}
    return client.post("/v1/messages", json=body)


def image(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def test_anthropic_takes_images_and_documents(anthropic: httpx.Client) -> None:
    blocks = [
        image("image/png", b64(PNG)),
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain"}, "title": "t"},
    ]
    assert anthropic_chat(anthropic, *blocks).status_code == 200


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            image("image/jpeg", b64(PNG)),
            "messages.0.content.1.image.source.base64.data: Image does not match the provided media type image/jpeg",
        ),
        (
            image("image/bmp", b64(PNG)),
            "messages.0.content.1.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png',"
            " 'image/gif' or 'image/webp'",
        ),
        (image("image/png", "not base64!"), "messages.0.content.1.image.source.base64.data: Invalid base64 data"),
        (
            image("image/png", "A" * (MAX_IMAGE_BASE64 + 4)),
            f"messages.0.content.1.image.source.base64: image exceeds 5 MB maximum: {MAX_IMAGE_BASE64 + 4} bytes"
            f" > {MAX_IMAGE_BASE64} bytes",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PNG)}},
            "messages.0.content.1.document.source.base64.data: The PDF specified was not valid.",
        ),
        (
            {"type": "image", "source": {"type": "base64", "media_type": "image/png"}},
            "messages.0.content.1.image.source.base64.data: Field required",
        ),
        (
            {**image("image/png", b64(PNG)), "alt": "x"},
            "messages.0.content.1.image.alt: Extra inputs are not permitted",
        ),
    ],
)
def test_anthropic_refuses_a_bad_block_in_its_words(
    anthropic: httpx.Client, block: dict[str, Any], message: str
) -> None:
    reply = anthropic_chat(anthropic, block)
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"] == "error" and body["error"] == {"type": "invalid_request_error", "message": message}


def test_anthropic_refuses_an_unknown_block_type(anthropic: httpx.Client) -> None:
    reply = anthropic_chat(anthropic, {"type": "picture"})
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith(
        "messages.0.content.1: Input tag 'picture' found using 'type' does not match any of the expected tags:"
    )


# --- Ollama ------------------------------------------------------------------------------------------


@pytest.fixture
def ollama() -> Iterator[tuple[OllamaServer, httpx.Client]]:
    with (
        OllamaServer(installed=("gemma3:4b", "gemma3:270m")) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as client,
    ):
        yield server, client


def ollama_chat(client: httpx.Client, images: Any, model: str = "gemma3:4b") -> httpx.Response:
    message = {"role": "user", "content": "Look", "images": images}
    return client.post("/api/chat", json={"model": model, "messages": [message], "stream": False})


def test_ollama_takes_base64_images_and_records_them(ollama: tuple[OllamaServer, httpx.Client]) -> None:
    server, client = ollama
    assert ollama_chat(client, [b64(PNG)]).status_code == 200
    assert server.requests[-1].json()["messages"][0]["images"] == [b64(PNG)]


@pytest.mark.parametrize(
    ("images", "error"),
    [
        ([f"data:image/png;base64,{b64(PNG)}"], "illegal base64 data at input byte 4"),
        ([7], "json: cannot unmarshal number into Go struct field Message.messages.images of type api.ImageData"),
        (
            b64(PNG),
            "json: cannot unmarshal string into Go struct field Message.messages.images of type []api.ImageData",
        ),
    ],
)
def test_ollama_refuses_images_that_are_not_base64_strings(
    ollama: tuple[OllamaServer, httpx.Client], images: Any, error: str
) -> None:
    _, client = ollama
    reply = ollama_chat(client, images)
    assert reply.status_code == 400 and reply.json() == {"error": error}


def test_ollama_says_which_models_see_and_a_model_without_vision_fails_on_an_image(
    ollama: tuple[OllamaServer, httpx.Client],
) -> None:
    """`/api/show` and `/api/tags` list the capabilities; an image for a model without "vision" is
    the runner's 500, and text alone still goes."""
    _, client = ollama
    shown = {
        m: client.post("/api/show", json={"model": m}).json()["capabilities"] for m in ("gemma3:4b", "gemma3:270m")
    }
    assert shown == {"gemma3:4b": ["completion", "vision"], "gemma3:270m": ["completion"]}
    tags = {m["name"]: m["capabilities"] for m in client.get("/api/tags").json()["models"]}
    assert tags == shown
    reply = ollama_chat(client, [b64(PNG)], model="gemma3:270m")
    assert reply.status_code == 500
    assert reply.json() == {"error": "this model is missing data required for image input"}
    assert ollama_chat(client, [], model="gemma3:270m").status_code == 200
