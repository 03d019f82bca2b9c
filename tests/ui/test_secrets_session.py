"""After a scripted session with DEBUG logging (three accounts, an Azure OpenAI, a Vertex AI and a Bedrock one, chats, a proxy
config export, the providers' own usage read with organisation admin keys), no key is in any file under the config,
data, cache or log dirs, nor in the exported config."""

from __future__ import annotations

import json
import logging
from datetime import date

from desktop_app.domain.accounts import Account
from desktop_app.domain.cloud_secrets import aws_credentials
from desktop_app.domain.pools import Pool
from desktop_app.services.logs import setup_logging
from desktop_app.ui.window_menus import export_proxy_config
from tests.servers import anthropic_admin, openai_admin
from tests.servers.anthropic_fault import AnthropicServer
from tests.servers.azure_openai import AzureServer
from tests.servers.bedrock_runtime import BedrockServer
from tests.servers.vertex_anthropic import VertexServer
from tests.ui.conftest import run

ANTHROPIC_A = "sk-ant-test-a"
ANTHROPIC_B = "sk-ant-test-b"
OPENAI = "sk-live-51b0c3d9e7a24f68"
AZURE = "3f9c2a7d41b84e6f9d0c5a1e7b2f8c46"  # Azure keys are 32 hex digits, no prefix
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSESSIONSCAN"
AWS_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENSCAN"
ADMIN_KEYS = (anthropic_admin.ADMIN_KEY, openai_admin.ADMIN_KEY)


def _send(qtbot, app, target_id: str, model: str, text: str, expect: str) -> None:
    pane = app.chat_pane
    assert pane.select_model(target_id, model), (target_id, model)
    pane.composer.setPlainText(text)
    with qtbot.waitSignal(pane.reply_finished, timeout=60_000) as finished:
        pane.send_button.click()
    assert finished.args == [expect]


def test_no_key_lands_in_any_file_after_a_full_session(qtbot, modeldesk, fault_server, isolated_home, tmp_path):
    app = modeldesk
    secret_parts: list[str] = []
    fault_server.valid_keys.add(OPENAI)
    setup_logging(app.paths.log_dir, level=logging.DEBUG)
    logging.getLogger("LiteLLM").setLevel(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    try:
        with (
            AnthropicServer() as anthropic,
            AzureServer(valid_keys={AZURE}, deployments={"gpt-4o": "ok"}) as azure,
            VertexServer() as vertex_twin,
            BedrockServer() as bedrock_twin,
        ):
            service_account = vertex_twin.service_account("ci@twin-project.iam.gserviceaccount.com")
            # The key file's secret parts: the PEM body (without its BEGIN/END lines) and the key id.
            secret_parts.extend(json.loads(service_account)["private_key"].splitlines()[1:-2])
            secret_parts.append(json.loads(service_account)["private_key_id"])
            work = Account(provider_id="anthropic", label="Claude, work", base_url=anthropic.base_url)
            home = Account(provider_id="anthropic", label="Claude, home", base_url=anthropic.base_url)
            lab = Account(provider_id="openai_compatible", label="Lab", base_url=fault_server.base_url)
            cloud = Account(provider_id="azure", label="Azure", base_url=azure.endpoint, deployments=("gpt-4o",))
            claude_vertex = Account(
                provider_id="vertex", label="Vertex", base_url=vertex_twin.endpoint, project="twin-project"
            )
            claude_bedrock = Account(provider_id="bedrock", label="Bedrock", base_url=bedrock_twin.endpoint)
            aws = aws_credentials(bedrock_twin.default_keys[0], AWS_SECRET, AWS_TOKEN)
            accounts = ((work, ANTHROPIC_A), (home, ANTHROPIC_B), (lab, OPENAI), (cloud, AZURE))
            for account, key in (*accounts, (claude_vertex, service_account), (claude_bedrock, aws)):
                run(qtbot, app.accounts.save_account(account, key))
                assert run(qtbot, app.accounts.check(account)).status.value == "ok"
            pool = Pool(label="Claude pool", provider_id="anthropic", account_ids=(work.id, home.id))
            run(qtbot, app.accounts.save_pool(pool))
            app.chat_pane._reload_picker()
            _send(qtbot, app, lab.id, "ok", "hello lab", "complete")
            _send(qtbot, app, lab.id, "fault-401", "a failure", "failed")
            _send(qtbot, app, cloud.id, "gpt-4o", "hello azure", "complete")
            azure.valid_keys = {"another-key"}
            _send(qtbot, app, cloud.id, "gpt-4o", "a rejected azure key", "failed")
            _send(qtbot, app, claude_vertex.id, "claude-sonnet-4-5@20250929", "hello vertex", "complete")
            vertex_twin.behaviour["ci@twin-project.iam.gserviceaccount.com"] = "401"
            _send(qtbot, app, claude_vertex.id, "claude-sonnet-4-5@20250929", "a refused vertex call", "failed")
            bedrock_model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
            _send(qtbot, app, claude_bedrock.id, bedrock_model, "hello bedrock", "complete")
            bedrock_twin.behaviour[bedrock_twin.default_keys[0]] = "429"
            _send(qtbot, app, claude_bedrock.id, bedrock_model, "a throttled bedrock call", "failed")
            anthropic.behaviour[ANTHROPIC_A] = "429"
            _send(qtbot, app, pool.id, "claude-sonnet-4-5", "hello pool", "complete")
            anthropic.behaviour[ANTHROPIC_B] = "401"
            run(qtbot, app.chat_pane.new_conversation())
            _send(qtbot, app, home.id, "claude-sonnet-4-5", "and a bad key", "failed")
            exported = app.paths.config_dir / "litellm-proxy.yaml"
            run(qtbot, export_proxy_config(app.window, app.accounts, str(exported)))
            assert "MODELDESK_CLAUDE_WORK_KEY" in exported.read_text()
            # Temporary AWS credentials: the session token is named too (its variable, never its value).
            assert "aws_session_token: os.environ/MODELDESK_BEDROCK_AWS_SESSION_TOKEN" in exported.read_text()
            run(qtbot, app.usage_pane.reload())
            with anthropic_admin.AnthropicAdminTwin() as claude_org, openai_admin.OpenAIAdminTwin() as openai_org:
                claude_org.seed(date.today())
                openai_org.seed(date.today())
                for twin, provider_id, admin_key in (
                    (claude_org, "anthropic", anthropic_admin.ADMIN_KEY),
                    (openai_org, "openai", openai_admin.ADMIN_KEY),
                ):
                    org = Account(provider_id=provider_id, label=f"{provider_id} org", base_url=twin.base_url)
                    run(qtbot, app.accounts.save_account(org, None))
                    app.accounts_pane.select_account(org.id)
                    app.accounts_pane.admin_key_field.edit.setText(admin_key)
                    assert run(qtbot, app.accounts_pane.save_current()) is not None
                panel = app.usage_pane.org_panel
                with qtbot.waitSignal(panel.report_loaded, timeout=60_000):
                    panel.refresh_button.click()
                assert panel.status_label.text() == "" and panel.keys.rowCount() == 5
            run(qtbot, app.store.close())
            run(qtbot, app.usage.close())
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "baseFilename", "").startswith(str(isolated_home)):
                logging.getLogger().removeHandler(handler)
                handler.close()
        for name in ("LiteLLM", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)

    files = [p for p in isolated_home.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"settings.json", "models.json", "modeldesk.log", "litellm-proxy.yaml"} <= names
    assert any(p.name.endswith(".sqlite3") for p in files)
    for path in files:
        data = path.read_bytes()
        for key in (ANTHROPIC_A, ANTHROPIC_B, OPENAI, AZURE, *ADMIN_KEYS, *secret_parts, AWS_SECRET, AWS_TOKEN):
            assert key.encode() not in data, f"a key leaked into {path.relative_to(isolated_home)}"
    for key in (ANTHROPIC_A, ANTHROPIC_B, OPENAI, AZURE):
        assert key not in app.chat_pane.transcript.toPlainText()
