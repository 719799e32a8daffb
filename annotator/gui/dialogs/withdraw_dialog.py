"""Identity > Withdraw…: withdrawal requests from the window (the same plan and report as
``annotator takedown --from``), and the watch that makes an open window drop withdrawn people.

The watch polls the project's data version (bumped by every takedown, from this window or any
other process) every :data:`WATCH_MS`; when it changes, the window drops every thumbnail it
holds (a new disk cache), reloads the identity list and the grid, and says why in the status
bar. ``gui/actions.py`` adds the menu entry and the watch; ``gui/window_dialogs.Dialogs``
opens the dialog.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from annotator.core.review import requests
from annotator.store import withdrawal as ledger_store

# the window: ``project``, ``loader``, ``reviewer``, ``current_identity``, ``identity_row``,
# ``run_task``, ``reload_list``, ``mode`` (gui/main_window.py; not imported: no import circle)
MainWindow = Any

WATCH_MS = 1500


def plan_text(pl: requests.Plan, keep_copies: bool, include_lookalikes: bool) -> str:
    """The summary of a plan, as ``takedown --from`` prints it."""
    faces = sum(p.faces for p in pl.people)
    copies = sum(p.copies for p in pl.people)
    look = sum(p.lookalikes for p in pl.people)
    pk = sum(p.packages for p in pl.people)
    lines = [
        f"{len(pl.people)} people to withdraw: {faces} face(s), {copies} copy(ies) under other "
        f"identities ({'kept' if keep_copies else 'removed'}), {look} look-alike face(s) "
        f"({'removed' if include_lookalikes else 'listed, not removed'}), held by {pk} "
        "package(s) out"
    ]
    if pl.done:
        lines.append(f"{len(pl.done)} request(s) already carried out (in the ledger)")
    lines += [f"unknown: {r} (no identity has this key or name)" for r in pl.unknown]
    lines += [
        f"ambiguous: {r} names {len(k)} identities ({', '.join(k)}); give a key"
        for r, k in pl.ambiguous.items()
    ]
    return "\n".join(lines)


class WithdrawDialog(QDialog):
    """Requests (one key or name a line), a preview, then one confirmation for all."""

    def __init__(self, win: MainWindow, parent: QWidget, first: str = ""):
        super().__init__(parent)
        self.win = win
        self.setWindowTitle("Withdraw people")
        self.intro = QLabel(
            "Remove people from this project for good: their faces, names, labels and history "
            "(your source files are not touched). Only salted digests stay, so an import, a "
            "merge or a pack refuses them later. It cannot be undone.<br>"
            "Type one identity key or name a line (# starts a comment), press <b>Preview</b>, "
            "then <b>Withdraw…</b>."
        )
        self.intro.setWordWrap(True)
        self.requests = QPlainTextEdit(first)
        self.requests.setPlaceholderText("one identity key or name a line; # comments")
        self.keep = QCheckBox(
            "Keep copies of their photos filed under other identities (list them)"
        )
        self.look = QCheckBox("Also remove faces that look like them, filed elsewhere")
        self.report = QLabel("")
        self.report.setWordWrap(True)
        self.plan: requests.Plan | None = None
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.preview_button = buttons.addButton("Preview", QDialogButtonBox.ButtonRole.ActionRole)
        self.withdraw_button = buttons.addButton(
            "Withdraw…", QDialogButtonBox.ButtonRole.DestructiveRole
        )
        self.withdraw_button.setEnabled(False)
        self.preview_button.clicked.connect(self.preview)
        self.withdraw_button.clicked.connect(self.withdraw)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        for w in (self.intro, self.requests, self.keep, self.look, self.report, buttons):
            lay.addWidget(w)
        self.requests.textChanged.connect(lambda: self.withdraw_button.setEnabled(False))

    def lines(self) -> list[str]:
        out = []
        for line in self.requests.toPlainText().splitlines():
            s = line.split("#", 1)[0].strip()
            if s:
                out.append(s)
        return out

    def preview(self) -> None:
        if self.win.project is None:
            return
        self.plan = requests.plan(self.win.project, self.lines())
        self.report.setText(plan_text(self.plan, self.keep.isChecked(), self.look.isChecked()))
        self.withdraw_button.setEnabled(bool(self.plan.people))

    def withdraw(self) -> None:
        pl = self.plan
        if pl is None or not pl.people or self.win.project is None:
            return
        sure = QMessageBox.question(
            self,
            "Withdraw people",
            f"Withdraw these {len(pl.people)} people for good? This cannot be undone.",
        )
        if sure != QMessageBox.StandardButton.Yes:
            return
        keep, look, reviewer = self.keep.isChecked(), self.look.isChecked(), self.win.reviewer

        def fn(project, progress, cancelled):
            return requests.run(
                project,
                pl.people,
                reviewer,
                keep_copies=keep,
                include_lookalikes=look,
                progress=progress,
                cancelled=cancelled,
            )

        task = self.win.run_task(f"Withdrawing {len(pl.people)} people", fn)
        task.done.connect(self._done)
        self.withdraw_button.setEnabled(False)

    def _done(self, result: object, error: str) -> None:
        if error or not isinstance(result, requests.BulkResult):
            self.report.setText(f"not done: {error}")
            return
        text = f"withdrew {len(result.done)} people; file compacted"
        text += "".join(f"\nnot withdrawn: {f['request']}: {f['reason']}" for f in result.failed)
        self.report.setText(text)
        self.win.show_message(text.splitlines()[0], 15000)


class DataVersionWatch(QObject):
    """Polls the window's project's data version; when it is not the one the window's
    thumbnail cache was made under (a takedown since), the window forgets every thumbnail (a new
    cache, made under the new version) and reloads what it shows."""

    def __init__(self, win: MainWindow):
        super().__init__(win)
        self.win = win
        self.timer = QTimer(self, interval=WATCH_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> bool:
        """True when the window was reloaded."""
        win = self.win
        if win.project is None or win.loader is None or win.loader.disk.version is None:
            return False
        try:
            v = ledger_store.data_version(win.project)
        except Exception:  # noqa: BLE001 - a busy or closing file: look again next time
            return False
        if v == win.loader.disk.version:
            return False
        win.loader.set_cache(win.project.cache_dir / "thumbs.sqlite")  # nothing kept in memory
        win.reload_list()
        win.mode.reload()
        win.show_message(
            "People were withdrawn from this project (a takedown): they are gone from the "
            "screen and from the thumbnail cache",
            15000,
        )
        return True
