"""The Usage pane over a real UsageStore: table model, filters, chart, summary, budgets and export."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QHelpEvent, QImage
from PySide6.QtWidgets import QFileDialog, QToolTip

from desktop_app.domain.accounts import Account
from desktop_app.domain.usage import DailyUsage, UsageRecord
from desktop_app.services.accounts.usage import UsageStore
from desktop_app.ui.usage import DailyChart, UsagePane, UsageTableModel
from desktop_app.ui.usage.chart import ChartMetric, account_series, nice_ticks
from desktop_app.ui.usage.model import CACHE, COST, SortRole
from desktop_app.ui.usage.pane import ALL_ACCOUNTS, ALL_MODELS, EMPTY_HINT
from tests.ui.conftest import close_after, run


def today() -> date:
    """Asked at use, not at import: a run that crosses midnight must not compare two days."""
    return date.today()


WORK = Account(id="work", provider_id="openai_compatible", label="Work", colour="#2563eb")
HOME = Account(id="home", provider_id="openai_compatible", label="Home", colour="#d97706", daily_budget_tokens=1000)
LAB = Account(id="lab", provider_id="openai_compatible", label="Lab")  # no colour tag


def at(days_ago: int, hour: int = 12) -> float:
    return datetime.combine(today() - timedelta(days=days_ago), clock(hour)).timestamp()


def day(days_ago: int) -> str:
    return (today() - timedelta(days=days_ago)).isoformat()


def rec(when: float, account_id: str, model: str, prompt: int, completion: int, cost: float | None) -> UsageRecord:
    return UsageRecord(
        at=when,
        account_id=account_id,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        latency_s=1.0,
        ttft_s=0.1,
        status="ok",
        error_kind="",
    )


SEED = (
    rec(at(0), "work", "qwen2.5-7b", 1000, 200, 0.012),
    rec(at(0), "home", "mixtral", 700, 150, 0.0003),
    rec(at(0), "lab", "llama3", 300, 45, None),
    rec(at(1), "work", "qwen2.5-0.5b", 500, 100, 0.001),
    rec(at(3), "home", "mixtral", 2000, 400, 0.05),
    rec(at(3), "gone", "mixtral", 10, 10, 0.0001),  # an account since removed
)


@pytest.fixture
def store(qloop, qtbot, tmp_path: Path) -> Iterator[UsageStore]:
    store = UsageStore(tmp_path / "data" / "usage.sqlite3")
    run(qtbot, store.open())
    yield store
    run(qtbot, store.close())


@pytest.fixture
def seeded(qtbot, store: UsageStore) -> UsageStore:
    for record in SEED:
        run(qtbot, store.record(record))
    return store


@pytest.fixture
def accounts() -> list[Account]:
    return [WORK, HOME, LAB]


@pytest.fixture
def make_pane(qtbot, accounts: list[Account]) -> Callable[[UsageStore], UsagePane]:
    def make(usage: UsageStore) -> UsagePane:
        pane = UsagePane(usage=usage, accounts_provider=lambda: list(accounts))
        qtbot.addWidget(pane, before_close_func=close_after(qtbot))
        pane.resize(900, 640)
        with qtbot.waitSignal(pane.reloaded):
            run(qtbot, pane.reload())
        return pane

    return make


def table_rows(pane: UsagePane) -> list[tuple[str, ...]]:
    model = pane.model
    return [tuple(model.index(r, c).data() for c in range(3)) for r in range(model.rowCount())]


def count_pixels(image: QImage, colour: str) -> int:
    wanted = QColor(colour).rgb()
    return sum(
        1 for y in range(0, image.height(), 2) for x in range(0, image.width(), 2) if image.pixel(x, y) == wanted
    )


# --- the table model ---------------------------------------------------------------------------------


def test_the_table_model_passes_the_model_tester(qtmodeltester) -> None:
    model = UsageTableModel()
    rows = [
        DailyUsage(day(0), "work", "qwen2.5-7b", 3, 1200, 300, 0.0123, 1024, 60),
        DailyUsage(day(0), "gone", "llama3", 1, 5, 5, None),
        DailyUsage(day(2), "work", "", 10, 12345, 678, 0.0),
    ]
    model.set_rows(rows, labels={"work": "Work"}, colours={"work": QColor("#2563eb")})
    qtmodeltester.check(model)
    qtmodeltester.check(model, force_py=True)

    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())] == [
        "Date",
        "Account",
        "Model",
        "Requests",
        "Prompt tokens",
        "Completion tokens",
        "Cost (USD)",
        "Cache read / written",
    ]
    assert [model.index(0, c).data() for c in range(8)] == [
        day(0),
        "Work",
        "qwen2.5-7b",
        "3",
        "1,200",
        "300",
        "0.0123",
        "1,024 / 60",
    ]
    assert model.index(1, CACHE).data() == ""  # no cache used
    assert [model.index(1, c).data() for c in (1, 6)] == ["Removed account", "—"]
    assert model.index(2, 4).data() == "12,345"
    assert model.index(0, 1).data(Qt.ItemDataRole.DecorationRole) == QColor("#2563eb")
    assert model.index(1, COST).data(SortRole) < model.index(2, COST).data(SortRole)  # unknown below free

    model.set_rows([], labels={}, colours={})
    qtmodeltester.check(model)
    assert model.rowCount() == 0


# --- the pane ----------------------------------------------------------------------------------------


def test_the_pane_shows_the_periods_rows_newest_first_with_labels(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)

    assert not pane.showing_empty_state
    assert table_rows(pane) == [
        (day(0), "Home", "mixtral"),
        (day(0), "Lab", "llama3"),
        (day(0), "Work", "qwen2.5-7b"),
        (day(1), "Work", "qwen2.5-0.5b"),
        (day(3), "Removed account", "mixtral"),
        (day(3), "Home", "mixtral"),
    ]
    combo = pane.account_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        ALL_ACCOUNTS,
        "Work",
        "Home",
        "Lab",
        "Removed account gone",
    ]
    combo = pane.model_combo
    assert [combo.itemText(i) for i in range(combo.count())] == [
        ALL_MODELS,
        "llama3",
        "mixtral",
        "qwen2.5-0.5b",
        "qwen2.5-7b",
    ]


def test_filters_change_the_rows_and_the_chart(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)

    pane.account_combo.setCurrentIndex(pane.account_combo.findData("work"))
    assert table_rows(pane) == [(day(0), "Work", "qwen2.5-7b"), (day(1), "Work", "qwen2.5-0.5b")]
    assert pane.chart.totals()[-2:] == [600, 1200]

    pane.model_combo.setCurrentIndex(pane.model_combo.findData("qwen2.5-7b"))
    assert table_rows(pane) == [(day(0), "Work", "qwen2.5-7b")]

    pane.account_combo.setCurrentIndex(pane.account_combo.findData("home"))
    assert table_rows(pane) == []
    assert pane.chart.is_empty()
    assert pane.chart.empty_text() == "No requests match these filters in the last 30 days."
    assert not pane.showing_empty_state  # there is history, just none that matches

    pane.set_filters(account_id=None, model="mixtral")
    assert table_rows(pane) == [
        (day(0), "Home", "mixtral"),
        (day(3), "Removed account", "mixtral"),
        (day(3), "Home", "mixtral"),
    ]
    pane.set_filters()
    assert len(table_rows(pane)) == len(SEED)


def test_filters_survive_a_reload_and_new_models_appear(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    pane.set_filters(account_id="work")

    run(qtbot, seeded.record(rec(at(0, 13), "work", "phi-3-mini", 10, 10, 0.5)))
    with qtbot.waitSignal(pane.reloaded):
        run(qtbot, pane.reload())

    assert pane.account_filter == "work"
    assert pane.model_combo.findData("phi-3-mini") > 0
    assert table_rows(pane)[:2] == [(day(0), "Work", "phi-3-mini"), (day(0), "Work", "qwen2.5-7b")]


def test_the_period_choice_reloads_with_fewer_days(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    with qtbot.waitSignal(pane.reloaded):
        pane.range_combo.setCurrentIndex(pane.range_combo.findData(7))
    assert pane.days == 7
    assert len(pane.chart.days) == 7
    assert pane.chart.days[-1] == today()

    run(qtbot, seeded.record(rec(at(20), "work", "qwen2.5-7b", 1, 1, None)))
    with qtbot.waitSignal(pane.reloaded):
        run(qtbot, pane.reload())
    assert day(20) not in {row[0] for row in table_rows(pane)}


def test_only_the_newest_of_overlapping_reloads_is_shown(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    shown: list[int] = []
    pane.reloaded.connect(lambda: shown.append(pane.model.rowCount()))
    # Started in this order, their statements reach the store's one worker in this order too.
    first = asyncio.ensure_future(pane.reload())
    write = asyncio.ensure_future(seeded.record(rec(at(0, 14), "work", "phi-3-mini", 1, 1, None)))
    second = asyncio.ensure_future(pane.reload())

    run(qtbot, asyncio.gather(first, write, second))

    assert shown == [len(SEED) + 1]


def test_a_reload_after_the_store_closed_changes_nothing(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    run(qtbot, seeded.close())
    with qtbot.assertNotEmitted(pane.reloaded):
        run(qtbot, pane.reload())
    assert len(table_rows(pane)) == len(SEED)


def test_the_summary_line_counts_today_across_accounts(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    assert pane.summary_label.text() == "Today: 2,395 tokens, $0.0123 across 3 accounts"


def test_a_budget_nearly_used_up_shows_a_warning(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    assert not pane.budget_label.isHidden()
    assert pane.budget_label.text() == "Account “Home” has used 85% of its daily token budget (850 of 1,000)."


def test_no_data_shows_the_empty_state_sentence_until_the_first_request(qtbot, store, make_pane) -> None:
    pane = make_pane(store)

    assert pane.showing_empty_state
    assert pane.empty_hint.text() == EMPTY_HINT == "No requests yet: usage appears here after your first chat."
    assert pane.summary_label.text() == "Today: no requests yet."
    assert not pane.export_button.isEnabled()
    assert pane.budget_label.isHidden()

    run(qtbot, store.record(rec(at(0), "work", "qwen2.5-7b", 1, 2, None)))
    with qtbot.waitSignal(pane.reloaded):
        run(qtbot, pane.reload())
    assert not pane.showing_empty_state
    assert pane.export_button.isEnabled()
    assert table_rows(pane) == [(day(0), "Work", "qwen2.5-7b")]


def test_the_chart_paints_without_warnings_empty_and_with_data(qtbot, seeded, make_pane) -> None:
    chart = DailyChart()
    qtbot.addWidget(chart)
    chart.resize(600, 260)
    assert chart.is_empty()
    image = chart.grab().toImage()
    assert count_pixels(image, WORK.colour) == 0

    series = account_series([WORK, HOME, LAB], ["gone"])
    rows = [DailyUsage(day(0), "work", "", 2, 1000, 200, 0.01), DailyUsage(day(3), "home", "", 1, 50, 5, None)]
    chart.set_data(rows, series, days=30)
    assert not chart.is_empty()
    assert chart.empty_text() == ""
    assert chart.totals()[-1] == 1200
    assert chart.totals()[-4] == 55
    image = chart.grab().toImage()
    assert count_pixels(image, WORK.colour) > 50
    assert count_pixels(image, HOME.colour) > 0

    chart.set_metric(ChartMetric.COST)
    assert chart.totals()[-1] == pytest.approx(0.01)
    chart.grab()

    # Only local models: tokens to show, but no cost.
    chart.set_data([DailyUsage(day(0), "lab", "", 1, 10, 10, None)], series, days=7)
    assert chart.empty_text() == "No cost was reported for this period (local models report none)."
    chart.grab()

    # Tiny, and a single day: nothing to overlap, nothing to crash.
    chart.set_metric(ChartMetric.TOKENS)
    chart.set_data(rows, series, days=1)
    chart.resize(40, 30)
    chart.grab()

    pane = make_pane(seeded)
    pane.metric_combo.setCurrentIndex(pane.metric_combo.findData(ChartMetric.COST.value))
    assert pane.chart.metric is ChartMetric.COST
    pane.grab()


# The offscreen platform cannot raise the tooltip's window; that is the test platform, not the chart.
@pytest.mark.qt_log_ignore(r"This plugin does not support raise\(\)")
def test_hovering_a_day_shows_its_totals_per_account(qtbot) -> None:
    chart = DailyChart()
    qtbot.addWidget(chart)
    chart.resize(600, 260)
    series = account_series([WORK, HOME], [])
    chart.set_data(
        [DailyUsage(day(0), "work", "", 2, 1000, 200, 0.01), DailyUsage(day(0), "home", "", 1, 40, 2, None)],
        series,
        days=7,
    )
    chart.show()
    qtbot.waitExposed(chart)
    chart.grab()

    for x, expected in ((chart.width() - 20, ["Work: 1,200 tokens", "Home: 42 tokens"]), (70, ["Nothing used."])):
        point = QPoint(x, chart.height() // 2)
        QCoreApplication.sendEvent(chart, QHelpEvent(QEvent.Type.ToolTip, point, chart.mapToGlobal(point)))
        assert QToolTip.text().splitlines()[1:] == expected


def test_untagged_accounts_take_palette_colours_no_tagged_account_uses() -> None:
    series = account_series([WORK, LAB, HOME], ["gone"])
    assert [s.account_id for s in series] == ["work", "lab", "home", "gone"]
    colours = [s.colour.name() for s in series]
    assert (colours[0], colours[2]) == (WORK.colour, HOME.colour)
    assert len(set(colours)) == 4
    assert series[3].label == "Removed account"


@pytest.mark.parametrize(
    ("maximum", "integer", "expected"),
    [
        (1200, True, [0, 500, 1000, 1500]),
        (7, True, [0, 5, 10]),
        (25_000, True, [0, 10_000, 20_000, 30_000]),
        (0.0123, False, [0, 0.005, 0.01, 0.015]),
        (0, True, [0, 1]),
    ],
)
def test_axis_ticks_are_round_numbers(maximum: float, integer: bool, expected: list[float]) -> None:
    assert nice_ticks(maximum, 3, integer=integer) == pytest.approx(expected)


# --- export ------------------------------------------------------------------------------------------


def test_export_to_writes_what_the_filters_show(qtbot, seeded, make_pane, tmp_path: Path) -> None:
    pane = make_pane(seeded)
    pane.set_filters(account_id="home")
    target = tmp_path / "out" / "home.csv"

    with qtbot.waitSignal(pane.export_finished) as finished:
        assert run(qtbot, pane.export_to(target)) == 2

    assert target.read_bytes().decode("utf-8").splitlines() == [
        "date,account_id,account,model,requests,prompt_tokens,completion_tokens,cost_usd,cache_read_tokens,cache_write_tokens",
        f"{day(0)},home,Home,mixtral,1,700,150,0.00030000,0,0",
        f"{day(3)},home,Home,mixtral,1,2000,400,0.05000000,0,0",
    ]
    assert finished.args == [f"Exported 2 rows to {target}."]
    assert pane.status_label.text() == f"Exported 2 rows to {target}."


def test_an_export_that_cannot_be_written_says_so(qtbot, seeded, make_pane, tmp_path: Path) -> None:
    pane = make_pane(seeded)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", "utf-8")
    target = blocker / "usage.csv"

    assert run(qtbot, pane.export_to(target)) is None
    assert pane.status_label.text().startswith(f"Not exported: {target} could not be written (")
    assert pane.export_button.isEnabled()


def test_the_export_button_opens_a_non_blocking_file_dialog(qtbot, seeded, make_pane, tmp_path: Path) -> None:
    pane = make_pane(seeded)
    pane.export_button.click()  # returns at once: the dialog is opened, not exec()'d

    dialog = pane.export_dialog
    assert isinstance(dialog, QFileDialog)
    assert dialog.isVisible()
    assert dialog.acceptMode() == QFileDialog.AcceptMode.AcceptSave
    pane.export_button.click()
    assert pane.export_dialog is dialog  # a second click does not open a second dialog

    assert dialog.windowModality() == Qt.WindowModality.WindowModal  # what open() sets

    target = tmp_path / "picked"
    with qtbot.waitSignal(pane.export_finished):
        dialog.selectFile(str(target))
        dialog.accept()
    assert pane.export_dialog is None
    assert (tmp_path / "picked.csv").read_bytes().startswith(b"date,account_id,account,model,")
    assert pane.status_label.text() == f"Exported {len(SEED)} rows to {tmp_path / 'picked.csv'}."


def test_closing_the_pane_closes_its_export_dialog(qtbot, seeded, make_pane) -> None:
    pane = make_pane(seeded)
    pane.export_button.click()
    dialog = pane.export_dialog
    assert dialog is not None
    with qtbot.waitSignal(dialog.finished):
        run(qtbot, pane.aclose())
    assert pane.export_dialog is None


def test_the_empty_usage_view_offers_to_start_a_chat(qtbot, modeldesk):
    pane = modeldesk.usage_pane
    modeldesk.window.show_pane("Usage")
    assert pane.showing_empty_state
    assert pane.empty_button.isVisible()
    pane.empty_button.click()
    assert modeldesk.window.stack.currentWidget() is modeldesk.chat_pane
