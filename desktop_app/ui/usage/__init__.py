"""The Usage pane: tokens and cost per day and account, daily budgets, CSV export."""

from desktop_app.ui.usage.chart import DailyChart
from desktop_app.ui.usage.model import UsageTableModel
from desktop_app.ui.usage.pane import UsagePane

__all__ = ["DailyChart", "UsagePane", "UsageTableModel"]
