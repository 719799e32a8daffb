"""View > Statistics…: what `annotator stats` computes, as a dashboard.

The numbers come from :func:`annotator.core.review.stats.project_stats` (plus the kappa interval and the
adjudication backlog from :func:`annotator.core.review.qa.report`); the plots are the same matplotlib
figures as `annotator stats --plots`, rendered to PNG by core and shown in QLabels. All of it is
computed in a worker thread on its own connection to the project file.
"""

from __future__ import annotations

import html
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from annotator.model import LABEL_COLORS, LABELS

PLOT_DPI = 90
SIZE = (1180, 980)  # the dashboard's designed size (smaller screens: as large as they allow)
PLOT_ORDER = ("labels", "qa_agreement", "faces_per_identity", "reviewers", "labels_per_hour")


def compute(project_path: Path) -> dict[str, Any]:
    """Everything the dashboard shows (runs in the worker)."""
    from annotator.core.review import qa
    from annotator.core.review.stats import figure_pngs, project_stats
    from annotator.store.db import open_project

    with open_project(project_path) as p:
        s = project_stats(p)
        rep = qa.report(p) if s["qa"]["drawn"] else None
    return {"stats": s, "qa_report": rep, "pngs": figure_pngs(s, dpi=PLOT_DPI)}


class _Signals(QObject):
    done = Signal(object, str)  # result or None, error text


class _Worker(QRunnable):
    def __init__(self, project_path: Path, signals: _Signals):
        super().__init__()
        self.project_path, self.signals = project_path, signals

    def run(self) -> None:
        try:
            result = compute(self.project_path)
        except Exception as e:  # noqa: BLE001 - shown in the dialog, not a crash
            traceback.print_exc()
            self.signals.done.emit(None, f"{type(e).__name__}: {e}")
            return
        self.signals.done.emit(result, "")


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _n(x: int | float) -> str:
    return f"{x:,}"


def _card(title: str) -> tuple[QFrame, QLabel]:
    f = QFrame()
    f.setObjectName("statsCard")
    f.setStyleSheet(
        "QFrame#statsCard { background:white; border:1px solid #d6d9de; border-radius:6px; }"
    )
    lay = QVBoxLayout(f)
    lay.setContentsMargins(12, 8, 12, 10)
    head = QLabel(f"<b style='color:#444'>{html.escape(title)}</b>")
    lay.addWidget(head)
    body = QLabel()
    body.setTextFormat(Qt.TextFormat.RichText)
    body.setWordWrap(True)
    body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    body.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    lay.addWidget(body, 1)
    return f, body


def _rows(rows: list[tuple[str, str]]) -> str:
    return (
        "<table cellspacing='0'>"
        + "".join(
            f"<tr><td style='padding:1px 14px 1px 0'>{k}</td>"
            f"<td align='right' style='padding:1px 0'>{v.replace(' ', '&nbsp;')}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


class StatsDialog(QDialog):
    """Non-modal; ``refresh()`` recomputes. ``stats`` holds the last result of core.stats."""

    loaded = Signal()

    def __init__(self, project_path: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.project_path = Path(project_path)
        self.stats: dict[str, Any] | None = None
        self.qa_report: dict[str, Any] | None = None
        self.pngs: dict[str, bytes] = {}
        self.error = ""
        self.busy = False
        self._signals: _Signals | None = None
        self.setWindowTitle(f"Statistics — {self.project_path.name}")
        # on a small screen (a 1280x800 laptop) the dialog fits it and scrolls, so its Close
        # button is never below the screen's edge
        avail = self.screen().availableGeometry() if self.screen() else None
        w, h = SIZE
        if avail is not None:
            w, h = min(w, avail.width() - 40), min(h, avail.height() - 60)
        self.resize(w, h)

        outer = QVBoxLayout(self)
        top = QHBoxLayout()
        self.headline = QLabel()
        self.headline.setObjectName("statsHeadline")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.headline, 1)
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.refresh_button)
        outer.addLayout(top)

        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        body.setObjectName("statsBody")
        body.setStyleSheet("QWidget#statsBody { background:#f3f4f6; }")
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        bl = QVBoxLayout(body)
        bl.setContentsMargins(8, 8, 8, 8)
        bl.setSpacing(8)

        cards = QGridLayout()
        cards.setSpacing(8)
        self.cards: dict[str, QLabel] = {}
        for n, (key, title) in enumerate(
            (
                ("faces", "Faces"),
                ("identities", "Identities"),
                ("noise", "Raw-data noise"),
                ("qa", "QA agreement"),
                ("reviewers", "Reviewers"),
            )
        ):
            frame, label = _card(title)
            label.setObjectName(f"card_{key}")
            self.cards[key] = label
            if key == "reviewers":
                cards.addWidget(frame, 1, 0, 1, 4)
            else:
                cards.addWidget(frame, 0, n)
        for c in range(4):
            cards.setColumnStretch(c, 1)
        bl.addLayout(cards)

        self.plot_grid = QGridLayout()
        self.plot_grid.setSpacing(8)
        bl.addLayout(self.plot_grid)
        bl.addStretch(1)
        self.plots: dict[str, QLabel] = {}

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        self.refresh()

    # -- computing -------------------------------------------------------------------------
    def refresh(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.refresh_button.setEnabled(False)
        self.headline.setText("<i>Computing statistics…</i>")
        self._signals = _Signals()  # no parent: lives as long as the worker holds it
        self._signals.done.connect(self._done)
        QThreadPool.globalInstance().start(_Worker(self.project_path, self._signals))

    def fit_content(self, max_height: int = 2000) -> None:
        """Grow to show the whole dashboard without scrolling (for screenshots)."""
        self.resize(SIZE[0], self.height())  # the designed width, whatever the screen
        QApplication.processEvents()  # the layout takes the freshly filled cards in
        lay = self.scroll.widget().layout()
        w = self.scroll.viewport().width()
        need = lay.totalHeightForWidth(w) if lay.hasHeightForWidth() else lay.sizeHint().height()
        extra = self.height() - self.scroll.viewport().height()
        self.resize(self.width(), min(max_height, need + extra))

    def is_ready(self) -> bool:
        return not self.busy and (self.stats is not None or bool(self.error))

    def _done(self, result: dict[str, Any] | None, error: str) -> None:
        self.busy = False
        self.refresh_button.setEnabled(True)
        if result is None:
            self.error = error
            self.headline.setText(
                f"<span style='color:#d62f2f'>Cannot compute statistics: {html.escape(error)}</span>"
            )
            self.loaded.emit()
            return
        self.error = ""
        self.stats, self.qa_report, self.pngs = result["stats"], result["qa_report"], result["pngs"]
        self._fill()
        self.loaded.emit()

    # -- display ---------------------------------------------------------------------------
    def _fill(self) -> None:
        s = self.stats
        assert s is not None
        ids = s["identities"]
        n_ident = sum(ids.values())
        rs = s["faces_by_review_state"]
        self.headline.setText(
            f"<span style='font-size:14pt'><b>{html.escape(self.project_path.name)}</b></span>"
            f"&nbsp;&nbsp;<span style='color:#555'>{_n(s['faces'])} faces · {_n(n_ident)} "
            f"identities · {_n(ids['reviewed'])} reviewed</span>"
        )

        fl = s["faces_by_label"]
        rows = [
            (
                f"<span style='color:{LABEL_COLORS[lab]}'>■</span> {lab.replace('_', ' ')}",
                _n(fl[lab]),
            )
            for lab in LABELS
        ]
        rows.append(("<span style='color:#bbb'>■</span> unlabeled", _n(fl["unlabeled"])))
        rows.append(("<b>total</b>", f"<b>{_n(s['faces'])}</b>"))
        self.cards["faces"].setText(
            _rows(rows) + f"<p style='color:#555'>in reviewed identities {_n(rs['reviewed'])}, "
            f"in unreviewed {_n(rs['unreviewed'])}</p>"
        )

        h = s["faces_per_identity"]
        self.cards["identities"].setText(
            _rows(
                [
                    ("reviewed", _n(ids["reviewed"])),
                    ("labeled, not reviewed", _n(ids["partly_labeled"])),
                    ("untouched", _n(ids["untouched"])),
                    ("empty", _n(ids["empty"])),
                    ("<b>total</b>", f"<b>{_n(n_ident)}</b>"),
                ]
            )
            + f"<p style='color:#555'>faces per identity: min {h['min']}, median {h['median']}, "
            f"mean {h['mean']:.1f}, max {h['max']}</p>"
        )

        nz = s["noise"]
        est = s.get("noise_estimate")
        if est is None or est["rate"] is None:
            noise = (
                "<p style='color:#777'>No estimate yet: draw a sample of all faces at random "
                "(Review &gt; QA pass…, Sample: all faces) and judge its faces.</p>"
            )
        else:
            lo, hi = est["ci95"]
            noise = (
                f"<span style='font-size:20pt'><b>{_pct(est['rate'])}</b></span><br>"
                f"<span style='color:#555'>95% CI {_pct(lo)} – {_pct(hi)}, from "
                f"{_n(est['judged'] - est['unsure'])} faces drawn at random out of "
                f"{_n(est['population_faces'])}</span>"
            )
        if nz["labeled"]:
            noise += (
                f"<p>Among labeled faces: {_n(nz['noisy'])} of {_n(nz['labeled'])} "
                "were wrong in the raw data (reviewed identities and label files: not a random "
                "sample, so no rate):</p>"
                + _rows(
                    [
                        ("wrong identity", _n(nz["wrong_identity"])),
                        ("duplicate", _n(nz["duplicate"])),
                        ("moved to another identity", _n(nz["moved"])),
                    ]
                )
            )
        self.cards["noise"].setText(noise)

        q = s["qa"]
        o = q["overall"]
        if not q["drawn"]:
            qa_text = "<p style='color:#777'>No QA pass yet (Review &gt; QA pass…).</p>"
        elif not o["judged"]:
            qa_text = f"<p>{_n(q['drawn'])} faces drawn, none judged yet.</p>"
        else:
            lo, hi = o["agreement_ci95"]
            kappa = "n/a" if o["kappa"] is None else f"{o['kappa']:.3f}"
            rep = (self.qa_report or {}).get("overall", {})
            kci = rep.get("kappa_ci95")
            kappa_ci = f" ({kci[0]:.2f}–{kci[1]:.2f})" if kci else ""
            err = rep.get("error_rate")
            eci = rep.get("error_rate_ci95")
            pending = (self.qa_report or {}).get("adjudication_pending", 0)
            qa_text = (
                f"<span style='font-size:20pt'><b>{_pct(o['agreement'])}</b></span><br>"
                f"<span style='color:#555'>95% CI {_pct(lo)} – {_pct(hi)}</span>"
                + _rows(
                    [
                        ("judged", f"{_n(o['judged'])} of {_n(q['drawn'])}"),
                        ("agreed", _n(o["agreed"])),
                        ("κ (95% CI)", kappa + kappa_ci),
                        (
                            "label errors",
                            f"{_pct(err)}" + (f" ({_pct(eci[0])}–{_pct(eci[1])})" if eci else ""),
                        ),
                        ("to adjudicate", _n(pending)),
                    ]
                )
            )
        self.cards["qa"].setText(qa_text)

        thr = s["throughput"]
        lbr = s["labels_by_reviewer"]
        per_qa = q["per_reviewer"]
        names = sorted(set(thr) | set(lbr) | set(per_qa))
        if not names:
            self.cards["reviewers"].setText("<p style='color:#777'>No labels yet.</p>")
        else:
            head = "".join(
                f"<th align='{a}' style='padding:2px 16px 2px 0;color:#555'>{t}</th>"
                for t, a in (
                    ("reviewer", "left"),
                    ("current labels", "right"),
                    ("faces judged", "right"),
                    ("active hours", "right"),
                    ("faces / hour", "right"),
                    ("QA agreement with their labels", "right"),
                )
            )
            body = ""
            for name in names:
                t = thr.get(name, {})
                fph = t.get("faces_per_hour")
                g = per_qa.get(name)
                qa_cell = (
                    f"{_pct(g['agreement'])} of {_n(g['judged'])}" if g and g["judged"] else "—"
                )
                cells = (
                    html.escape(name),
                    _n(sum(lbr.get(name, {}).values())),
                    _n(t.get("labels", 0)),
                    f"{t.get('active_hours', 0.0):.2f}",
                    "not enough activity" if fph is None else f"{fph:,.0f}",
                    qa_cell,
                )
                body += (
                    "<tr>"
                    + "".join(
                        f"<td align='{'left' if i == 0 else 'right'}' style='padding:2px 16px 2px 0'>"
                        f"{c}</td>"
                        for i, c in enumerate(cells)
                    )
                    + "</tr>"
                )
            note = html.escape(s.get("activity_note", ""))
            self.cards["reviewers"].setText(
                f"<table cellspacing='0'><tr>{head}</tr>{body}</table>"
                f"<p style='color:#777'><small>{note}</small></p>"
            )

        for w in self.plots.values():
            w.setParent(None)
            w.deleteLater()
        self.plots = {}
        names_in_order = [n for n in PLOT_ORDER if n in self.pngs] + [
            n for n in self.pngs if n not in PLOT_ORDER
        ]
        for i, name in enumerate(names_in_order):
            pm = QPixmap()
            pm.loadFromData(self.pngs[name], "PNG")
            lab = QLabel()
            lab.setObjectName(f"plot_{name}")
            lab.setPixmap(pm)
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setStyleSheet("background:white; border:1px solid #d6d9de; border-radius:6px")
            self.plot_grid.addWidget(lab, i // 2, i % 2)
            self.plots[name] = lab
