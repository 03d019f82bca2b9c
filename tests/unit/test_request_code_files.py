"""Snippets of requests with attached files, without a server: where the files are read from, and the
provider blocks they become (the snippets are run against the loopback servers in
test_request_code_runs.py)."""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from desktop_app.domain.request_code import ATTACHMENTS_VAR, request_snippets
from desktop_app.domain.request_wire import reads_attachments, resolve_files, wire_body
from desktop_app.domain.sent_requests import SentRequest

IMAGE = b"\x89PNG\r\n\x1a\n not really a picture"
DIGEST = hashlib.sha256(IMAGE).hexdigest()
NAME = f"{DIGEST[:2]}/{DIGEST}.png"


def request(provider_id: str, url: str = f"data:image/png;sha256,{DIGEST}") -> SentRequest:
    content = [{"type": "text", "text": "Look"}, {"type": "image_url", "image_url": {"url": url}}]
    return SentRequest(
        account_id="a1",
        provider_id=provider_id,
        base_url="http://127.0.0.1:9/v1",
        api_base=None,
        litellm_model=f"{provider_id}/m",
        model="m",
        messages=({"role": "user", "content": content},),
    )


def read(name: str) -> bytes:
    assert name == NAME
    return IMAGE


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        (
            "openai",
            [
                {"type": "text", "text": "Look"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{base64.b64encode(IMAGE).decode()}"},
                },
            ],
        ),
        (
            "anthropic",
            [
                {"type": "text", "text": "Look"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(IMAGE).decode()},
                },
            ],
        ),
        ("ollama", "Look"),
    ],
)
def test_a_stored_file_becomes_the_providers_block_with_its_bytes(provider_id: str, expected: Any) -> None:
    body = resolve_files(wire_body(request(provider_id)), read)
    assert body["messages"][0]["content"] == expected
    if provider_id == "ollama":
        assert body["messages"][0]["images"] == [base64.b64encode(IMAGE).decode()]


def test_a_web_image_and_an_inline_one_are_sent_as_they_are() -> None:
    web = request("anthropic", "https://example.com/cat.png")
    assert not reads_attachments(web)
    assert wire_body(web)["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.png"},
    }
    inline = request("ollama", "data:image/png;base64,iVBORw0KGgo=")
    assert not reads_attachments(inline)
    assert wire_body(inline)["messages"][0]["images"] == ["iVBORw0KGgo="]


def test_without_the_folder_the_snippets_read_it_from_the_environment(tmp_path: Path) -> None:
    snippets = {s.title: s.text for s in request_snippets(request("openai"))}
    ast.parse(snippets["LiteLLM"])
    assert f'Path(os.environ["{ATTACHMENTS_VAR}"])' in snippets["LiteLLM"]
    env = {k: v for k, v in os.environ.items() if k != ATTACHMENTS_VAR}
    done = subprocess.run(["bash", "-c", snippets["curl"]], env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert f"set {ATTACHMENTS_VAR} to the folder of ModelDesk's attachments" in done.stderr

    # The variable wins over the folder the snippets were given.
    (tmp_path / NAME).parent.mkdir()
    (tmp_path / NAME).write_bytes(IMAGE)
    given = request_snippets(request("openai"), "/no/such/folder")[-1].text
    body = given.partition("} | curl")[0] + "}\n"  # what would go to curl's stdin
    done = subprocess.run(
        ["bash", "-c", body], env={**env, ATTACHMENTS_VAR: str(tmp_path)}, capture_output=True, check=True
    )
    assert base64.b64encode(IMAGE) in done.stdout
