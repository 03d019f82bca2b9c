"""What makes a chat request impossible to send, said before anything is planned, stored or recorded.

The chat pane asks at Send; the chat service and the dispatcher ask again just before they act (the
settings or the keyring may have changed meanwhile), so a request that cannot be sent never becomes
a stored reply, nor a usage record of an account that was never contacted.
"""

from __future__ import annotations

from desktop_app.domain.accounts import Account
from desktop_app.domain.chat import ChatParams
from desktop_app.domain.errors import BadRequest, DomainError, ModelNotFound, NoKey
from desktop_app.services.errors import unsendable


def empty_message(text: str) -> BadRequest | None:
    if text.strip():
        return None
    return BadRequest("There is nothing to send: the message is empty.", "Type a message, then send.")


def no_model(target_id: str, model: str) -> ModelNotFound | None:
    if target_id and model:
        return None
    return ModelNotFound(
        "No model is selected for this conversation.", "Pick a model in the model picker, then send again."
    )


def params_refusal(params: ChatParams) -> BadRequest | None:
    """The parameters cannot be turned into a request (a JSON schema that does not parse), or give
    a thinking budget no model can use (one that leaves nothing of max tokens for the answer)."""
    try:
        params.request_options()
    except ValueError as exc:
        return BadRequest(str(exc), "Fix the JSON schema in the parameters panel.")
    budget = params.thinking_budget
    if budget is None:
        return None
    limit = params.max_completion_tokens or params.max_tokens
    if limit is not None and budget >= limit:
        return BadRequest(
            f"The thinking budget ({budget:,} tokens) must be less than max tokens ({limit:,}).",
            "Raise max tokens or lower the thinking budget in the parameters panel.",
        )
    return None


def account_refusal(account: Account, api_key: str | None) -> DomainError | None:
    """The account cannot be sent a request: its provider needs a key it lacks, or what it holds
    (base URL, key, headers) could not go into one."""
    if account.provider.key_required and not api_key:
        return NoKey(f"Account “{account.label}” has no key.", "Open Accounts and add the key.")
    if account.provider.secret_kind == "aws" and not api_key and not account.aws_profile:
        return NoKey(
            f"Account “{account.label}” has neither AWS keys nor an AWS profile.",
            "Open Accounts and add its access key id and secret, or name a profile.",
        )
    return unsendable(account, api_key)
