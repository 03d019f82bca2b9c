"""The GGUF library view: files found, their header facts, and unreadable files with the reason."""

from __future__ import annotations

import os

from desktop_app.services.local.gguf import GgufLibrary
from desktop_app.ui.llamacpp.library import GgufLibraryView
from tests.servers.llama import real_artifacts
from tests.ui.conftest import run


def test_a_folder_of_models_is_listed_with_facts_and_problems(qtbot, qloop, qtmodeltester, tmp_path):
    _, gguf = real_artifacts()
    folder = tmp_path / "models"
    (folder / "nested").mkdir(parents=True)
    os.symlink(gguf, folder / "nested" / "gemma-270m.gguf")
    (folder / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 5)
    (folder / "not-a-model.gguf").write_bytes(b"hello world, not a gguf file at all")
    library = GgufLibrary(tmp_path / "cache.json", folders=[])
    view = GgufLibraryView(library=library)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.folders_changed) as changed:
        run(qtbot, view.add_folder(str(folder)))
    assert changed.args == [[str(folder)]]
    assert view.model.rowCount() == 1
    row = [view.model.index(0, c).data() for c in range(view.model.columnCount())]
    assert row[1:6] == ["gemma3", "268.1M", "Q4_K_M", "32,768", "no"]
    assert view.problems.count() == 2
    reasons = " ".join(view.problems.item(i).text() for i in range(view.problems.count()))
    assert "broken.gguf" in reasons and "not-a-model.gguf" in reasons
    assert view.summary.text() == "1 model file found, 2 unreadable."
    assert view.files == [folder / "nested" / "gemma-270m.gguf"]
    qtmodeltester.check(view.model)
    view.filter_edit.setText("llama")
    assert view.proxy.rowCount() == 0
    view.filter_edit.setText("gemma3")
    assert view.proxy.rowCount() == 1
