"""Render the PNG icon sizes from the SVG (run after editing the SVG; the PNGs are committed).

QT_QPA_PLATFORM=offscreen python3 packaging/make_icons.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "annotator" / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256)
NAME = "io.github.annotator"


def main() -> int:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(ICONS / f"{NAME}.svg"))
    if not renderer.isValid():
        print(f"error: cannot read {ICONS / f'{NAME}.svg'}", file=sys.stderr)
        return 1
    for n in SIZES:
        img = QImage(n, n, QImage.Format.Format_ARGB32)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        renderer.render(p)
        p.end()
        out = ICONS / f"{NAME}-{n}.png"
        if not img.save(str(out), "PNG"):
            print(f"error: cannot write {out}", file=sys.stderr)
            return 1
        print(out.relative_to(ICONS.parent.parent.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
