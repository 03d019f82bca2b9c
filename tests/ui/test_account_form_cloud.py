"""The account form's cloud fields: Azure OpenAI's (API version, deployments) and Google Vertex AI's
(project, location, the service-account key file), shown for their provider only, saved to the account
(secrets to the keyring, never to settings.json), refused beside the field when malformed, and Check
against each loopback twin."""

from __future__ import annotations

import keyring
import pytest

from desktop_app.services.accounts.secrets import SERVICE
from desktop_app.ui.accounts import AccountsPane
from tests.servers.azure_openai import AzureServer
from tests.ui.conftest import run

KEY = "3f9c2a7d41b84e6f9d0c5a1e7b2f8c46"


@pytest.fixture
def pane(add_widget, account_service) -> AccountsPane:
    return add_widget(AccountsPane(accounts=account_service))


def choose(pane: AccountsPane, provider_id: str) -> None:
    pane.form.provider_combo.setCurrentIndex(pane.form.provider_combo.findData(provider_id))


def test_azure_fields_show_for_azure_only(pane):
    pane.add_button.click()
    form = pane.form
    choose(pane, "anthropic")
    assert not form.api_version_edit.isVisibleTo(pane) and not form.deployments_edit.isVisibleTo(pane)
    choose(pane, "azure")
    assert form.api_version_edit.isVisibleTo(pane) and form.deployments_edit.isVisibleTo(pane)
    assert not form.problem_labels["api_version"].isVisibleTo(pane)  # shown rows bring no empty notes
    assert not form.problem_labels["deployments"].isVisibleTo(pane)
    assert form.url_edit.placeholderText() == "https://NAME.openai.azure.com"
    assert form.api_version_edit.placeholderText() == "2024-10-21"


def test_an_azure_account_is_saved_and_checked_against_the_twin(qtbot, pane, account_service, settings_file):
    with AzureServer(valid_keys={KEY}, deployments={"gpt-4o": "ok", "gpt-4o-mini": "ok"}) as twin:
        pane.add_button.click()
        choose(pane, "azure")
        form = pane.form
        form.name_edit.setText("Azure, Sweden")
        # No endpoint: refused beside the base URL.
        form.key_edit.setText(KEY)
        assert run(qtbot, pane.save_current()) is None
        assert form.problem_labels["base_url"].isVisibleTo(pane)
        assert "needs its endpoint" in form.problem_labels["base_url"].text()
        form.url_edit.setText(twin.endpoint)
        form.api_version_edit.setText("October 2024")
        assert run(qtbot, pane.save_current()) is None
        note = form.problem_labels["api_version"]
        assert (
            note.isVisibleTo(pane) and note.text() == "The API version must look like 2024-10-21 or 2025-04-01-preview."
        )
        form.api_version_edit.setText("2024-10-21")
        assert not note.isVisibleTo(pane)
        form.deployments_edit.setText("gpt-4o, typed-one")
        account = run(qtbot, pane.save_current())
        assert account is not None
        assert (account.api_version, account.deployments) == ("2024-10-21", ("gpt-4o", "typed-one"))
        assert keyring.get_password(SERVICE, account.id) == KEY
        assert KEY not in settings_file.read_text("utf-8")
        result = run(qtbot, pane.check_current())
        assert result is not None and result.status.value == "ok", result
        assert result.models == ("gpt-4o", "gpt-4o-mini", "typed-one")
        assert form.status_label.text() == "OK: the key works and 3 deployments are available."
        # Shown again as saved.
        pane.select_account(account.id)
        assert (form.api_version_edit.text(), form.deployments_edit.text()) == ("2024-10-21", "gpt-4o, typed-one")


# --- Google Vertex AI --------------------------------------------------------------------------


def test_vertex_fields_and_the_key_file(qtbot, pane, account_service, settings_file, tmp_path, monkeypatch):
    import json
    import sys

    from tests.servers.vertex_anthropic import VertexServer

    pane.add_button.click()
    form = pane.form
    choose(pane, "vertex")
    assert form.project_edit.isVisibleTo(pane) and form.location_edit.isVisibleTo(pane)
    assert form.key_file_button.isVisibleTo(pane) and not form.api_version_edit.isVisibleTo(pane)
    assert form.fields.labelForField(form._key_field).text() == "Service account"
    assert not form.extra_label.isVisibleTo(pane)  # google-auth is installed
    with VertexServer() as twin:
        key_file = tmp_path / "key.json"
        key_file.write_text(
            json.dumps(json.loads(twin.service_account("ci@twin-project.iam.gserviceaccount.com")), indent=2)
        )
        not_a_key = tmp_path / "other.json"
        not_a_key.write_text('{"type": "authorized_user"}')
        assert not form.load_key_file(str(not_a_key))
        assert (
            form.problem_labels["key"].text()
            == "This JSON is not a service-account key (its “type” is not “service_account”)."
        )
        assert form.load_key_file(str(key_file)) and "\n" not in form.key_edit.text()
        form.name_edit.setText("Vertex")
        form.url_edit.setText(twin.endpoint)
        form.project_edit.setText("twin-project")
        account = run(qtbot, pane.save_current())
        assert account is not None and (account.project, account.location) == ("twin-project", None)
        private_key = json.loads(key_file.read_text())["private_key"]
        assert json.loads(keyring.get_password(SERVICE, account.id))["private_key"] == private_key
        assert "PRIVATE KEY" not in settings_file.read_text("utf-8")
        result = run(qtbot, pane.check_current())
        assert result is not None and result.status.value == "ok", result
        assert "claude-sonnet-4-5@20250929" in result.models
    choose(pane, "anthropic")
    assert form.fields.labelForField(form._key_field).text() == "API key" and not form.key_file_button.isVisibleTo(pane)
    monkeypatch.setitem(sys.modules, "google.auth", None)  # as without the extra
    choose(pane, "vertex")
    assert form.extra_label.isVisibleTo(pane)
    assert (
        form.extra_label.text() == "Google Vertex AI (Claude) needs an extra package: pip install 'modeldesk[vertex]'."
    )


# --- Amazon Bedrock ------------------------------------------------------------------------------


def test_bedrock_keys_are_one_keyring_entry_and_check_signs_with_them(qtbot, pane, settings_file):
    import json

    from tests.servers.bedrock_runtime import BedrockServer

    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTWINSECRET"
    pane.add_button.click()
    form = pane.form
    choose(pane, "bedrock")
    for edit in (form.aws_key_id_edit, form.aws_secret_edit, form.aws_token_edit, form.region_edit):
        assert edit.isVisibleTo(pane)
    assert not form.key_edit.isVisibleTo(pane) and not form.project_edit.isVisibleTo(pane)
    assert form.fields.labelForField(form._key_field).text() == "AWS keys"
    with BedrockServer() as twin:
        form.name_edit.setText("Bedrock")
        form.url_edit.setText(twin.endpoint)
        form.aws_key_id_edit.setText("akia-lowercase")
        form.aws_secret_edit.setText(secret)
        assert run(qtbot, pane.save_current()) is None
        assert (
            form.problem_labels["key"].text()
            == "An AWS access key id is 16 or more capital letters and digits (AKIA…)."
        )
        form.aws_key_id_edit.setText("AKIATWINEXAMPLE00001")
        form.region_edit.setText("us-east-1")
        account = run(qtbot, pane.save_current())
        assert account is not None and account.region == "us-east-1"
        assert json.loads(keyring.get_password(SERVICE, account.id)) == {
            "aws_access_key_id": "AKIATWINEXAMPLE00001",
            "aws_secret_access_key": secret,
        }
        assert secret not in settings_file.read_text("utf-8")
        assert form.aws_secret_edit.text() == ""  # emptied with the key field after Save
        result = run(qtbot, pane.check_current())  # with the stored keys
        assert result is not None and result.status.value == "ok", result
        assert "anthropic.claude-sonnet-4-5-20250929-v1:0" in result.models


def test_without_boto3_the_bedrock_form_names_the_pip_install(pane, monkeypatch):
    import sys

    pane.add_button.click()
    monkeypatch.setitem(sys.modules, "botocore", None)  # as without the extra
    choose(pane, "bedrock")
    assert pane.form.extra_label.isVisibleTo(pane)
    assert pane.form.extra_label.text() == "Amazon Bedrock needs an extra package: pip install 'modeldesk[bedrock]'."
    choose(pane, "azure")  # needs nothing extra
    assert not pane.form.extra_label.isVisibleTo(pane)
