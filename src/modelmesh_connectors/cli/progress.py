"""Download progress on a terminal: one line per concurrent download (rich).

Imported only when a terminal is attached and a download starts (see
:func:`~modelmesh_connectors.cli.output.progress_for`); nothing else imports it.
"""

from __future__ import annotations

import sys
import threading

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelmesh_connectors._internal.redact import redact_text

__all__ = ["DownloadProgress"]


class DownloadProgress:
    """Bytes, total, share, rate and ETA per download, drawn on stderr until :meth:`close`."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()  # downloads run in several threads
        self._closed = False
        self._progress.start()

    def __call__(self, label: str, done: int, total: int) -> None:
        with self._lock:
            if self._closed:
                return
            task = self._tasks.get(label)
            if task is None:
                task = self._progress.add_task(redact_text(label)[:40], total=total)
                self._tasks[label] = task
            self._progress.update(task, completed=done, total=total)

    def close(self) -> None:
        """Draw the last state and end the line (also when interrupted)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._progress.stop()
