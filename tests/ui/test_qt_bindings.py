"""The Qt bindings we run on must not leak or drop references on every call.

PySide6 6.12.0 under Python 3.11 drops a reference to None on each void method call; a streaming
app makes millions of them and dies with "none_dealloc". pyproject pins it out; this keeps it out.
"""

import sys

from PySide6.QtCore import QTimer


def test_void_qt_calls_keep_the_reference_count_of_none(qapp):
    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(1000):
        timer.setInterval(1)
    assert before - sys.getrefcount(None) < 10
