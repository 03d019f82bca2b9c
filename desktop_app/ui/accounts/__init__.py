"""The Accounts pane: add, edit, check and remove provider accounts and their keys."""

from desktop_app.ui.accounts.model import AccountListModel
from desktop_app.ui.accounts.pane import AccountsPane

__all__ = ["AccountListModel", "AccountsPane"]
