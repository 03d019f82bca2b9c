"""Save refuses what could not be sent, with the sentence beside the field; credential headers are
shown masked and kept in the keyring."""

from __future__ import annotations

import json

import keyring
import pytest

from desktop_app.services.accounts.secrets import SERVICE
from desktop_app.ui.accounts import AccountsPane
from desktop_app.ui.accounts.form import SECRET_MASK
from desktop_app.ui.theme import colours
from tests.ui.conftest import run


@pytest.fixture
def pane(add_widget, account_service) -> AccountsPane:
    return add_widget(AccountsPane(accounts=account_service))


def fill(pane: AccountsPane, *, url: str = "", key: str = "sk-test", headers: str = "") -> None:
    pane.add_button.click()
    pane.form.provider_combo.setCurrentIndex(pane.form.provider_combo.findData("openai_compatible"))
    pane.form.name_edit.setText("Gateway")
    pane.form.url_edit.setText(url)
    pane.form.key_edit.setText(key)
    pane.form.headers_edit.setPlainText(headers)


@pytest.mark.parametrize(
    ("field", "url", "key", "headers", "sentence"),
    [
        (
            "base_url",
            "http://[::1",
            "sk-test",
            "",
            "An IPv6 address in the base URL needs both brackets, as in http://[::1]:8080.",
        ),
        (
            "base_url",
            "http://127.0.0.1:99999",
            "sk-test",
            "",
            "The port of the base URL must be a number from 1 to 65535.",
        ),
        (
            "extra_headers",
            "",
            "sk-test",
            "X-Title: Café",
            "The value of X-Title must be plain ASCII: HTTP sends header values as bytes, so percent-encode other "
            "characters (Café as Caf%C3%A9).",
        ),
        (
            "extra_headers",
            "",
            "sk-test",
            "Transfer-Encoding: chunked",
            "The Transfer-Encoding header is set by the HTTP client for each request; remove it.",
        ),
        ("key", "", "sk-te st", "", "The key must be one line without spaces; paste it again."),
        (
            "extra_headers",
            "",
            "sk-test",
            "Cookie: séssion=1",
            "The value of Cookie must be plain ASCII: HTTP sends header values as bytes, so percent-encode other "
            "characters (Café as Caf%C3%A9).",
        ),
        (
            "extra_headers",
            "",
            "sk-test",
            "Authorization: Bearer sk-other",
            "The Authorization header is set by ModelDesk (put keys in the key field).",
        ),
    ],
)
def test_save_refuses_what_cannot_be_sent_beside_the_field(
    qtbot, pane, settings_file, field, url, key, headers, sentence
):
    fill(pane, url=url, key=key, headers=headers)
    assert run(qtbot, pane.save_current()) is None
    note = pane.form.problem_labels[field]
    assert note.isVisibleTo(pane) and note.text() == sentence
    assert colours().error in note.styleSheet()
    assert pane.form.status_label.text().startswith("Not saved: ")
    assert not settings_file.exists()  # nothing was saved
    assert [label for label in pane.form.problem_labels.values() if label.isVisibleTo(pane)] == [note]
    # Correcting the field takes the sentence away.
    {"base_url": pane.form.url_edit, "key": pane.form.key_edit}.get(field, pane.form.url_edit).setText("")
    if field == "extra_headers":
        pane.form.headers_edit.setPlainText("")
    assert not note.isVisibleTo(pane)
    assert run(qtbot, pane.save_current()) is not None


def test_credential_headers_are_masked_and_kept_in_the_keyring(qtbot, pane, account_service, settings_file):
    fill(pane, headers="X-Title: ModelDesk\nCookie: session=s3cret\nProxy-Authorization: Basic czNjcmV0")
    account = run(qtbot, pane.save_current())
    assert account is not None
    assert "s3cret" not in settings_file.read_text("utf-8") and "czNjcmV0" not in settings_file.read_text("utf-8")
    stored = json.loads(keyring.get_password(SERVICE, f"{account.id}/headers"))
    assert stored == {"Cookie": "session=s3cret", "Proxy-Authorization": "Basic czNjcmV0"}

    pane.select_account(account.id)
    assert pane.form.headers_edit.toPlainText() == (
        f"X-Title: ModelDesk\nCookie: {SECRET_MASK}\nProxy-Authorization: {SECRET_MASK}"
    )
    # Saved again as shown: the values stay; a new value replaces the stored one.
    pane.form.headers_edit.setPlainText(f"X-Title: ModelDesk\nCookie: session=new\nProxy-Authorization: {SECRET_MASK}")
    pane.form.key_edit.clear()
    assert run(qtbot, pane.save_current()) is not None
    sent = run(qtbot, account_service.resolved(account_service.find(account.id)))
    assert sent.request_headers == {
        "X-Title": "ModelDesk",
        "Cookie": "session=new",
        "Proxy-Authorization": "Basic czNjcmV0",
    }
