"""Desktop integration without Qt: the packaged icons, and the XDG files `install-desktop` lays.

Under a prefix DIR (default ``~/.local``) it writes

- ``DIR/share/applications/io.github.annotator.desktop``: the menu entry; ``Exec`` is the
  installed program, absolute, with ``gui %f`` so a project file opened from the file manager
  starts the reviewer on it;
- ``DIR/share/icons/hicolor/NxN/apps/io.github.annotator.png`` for every packaged size, and
  ``scalable/apps/io.github.annotator.svg``;
- ``DIR/share/mime/packages/io.github.annotator.xml``: the MIME type of project files
  (``application/x-annotator-project``: an SQLite file whose ``application_id`` is "ANNO").

Then it refreshes the desktop, MIME and icon caches with the freedesktop tools found on PATH
(none is required). ``uninstall`` removes exactly those files and refreshes again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from annotator.model import AnnotatorError

APP_ID = "io.github.annotator"
ICON_NAME = APP_ID
DESKTOP_FILE = f"{APP_ID}.desktop"
MIME_TYPE = "application/x-annotator-project"
MIME_FILE = f"{APP_ID}.xml"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256)
# The project file's SQLite header: PRAGMA application_id, big-endian at byte 68 ("ANNO").
PROJECT_APPLICATION_ID = 0x414E4E4F


def icons_dir() -> Traversable:
    """The packaged icon folder (inside the wheel, the source tree or a frozen build)."""
    return resources.files("annotator.resources").joinpath("icons")


def icon_png(size: int) -> Traversable:
    return icons_dir().joinpath(f"{ICON_NAME}-{size}.png")


def icon_svg() -> Traversable:
    return icons_dir().joinpath(f"{ICON_NAME}.svg")


def default_prefix() -> Path:
    """Where per-user XDG data goes: ``$XDG_DATA_HOME/..`` is not a prefix, so ``~/.local``."""
    return Path.home() / ".local"


def installed_program() -> list[str]:
    """The command that starts this installation of annotator, as absolute argv words.

    A frozen build is its own executable; an installed package has an `annotator` script
    next to the interpreter (or on PATH); a source checkout falls back to ``python -m``.
    """
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    beside = Path(sys.executable).parent / "annotator"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    found = shutil.which("annotator")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "annotator"]


_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec_word(word: str) -> str:
    """One argument of an Exec key, quoted as the Desktop Entry Specification asks."""
    if "%" in word:
        word = word.replace("%", "%%")
    if word and not (_RESERVED & set(word)) and "=" not in word:
        return word
    inner = "".join("\\" + c if c in '"`$\\' else c for c in word)
    return f'"{inner}"'


def _desktop_string(value: str) -> str:
    """A desktop-file string value: backslashes doubled (the Exec quoting's are part of it)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def desktop_entry(program: list[str]) -> str:
    """The text of the .desktop file, starting ``program gui %f``."""
    exec_line = " ".join([_exec_word(w) for w in program] + ["gui", "%f"])
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.4\n"
        "Name=Annotator\n"
        "GenericName=Face dataset reviewer\n"
        "Comment=Curate a noisy face-identity dataset into a small, verified test set\n"
        f"Exec={_desktop_string(exec_line)}\n"
        f"TryExec={_desktop_string(program[0])}\n"
        f"Icon={ICON_NAME}\n"
        "Terminal=false\n"
        "Categories=Science;ImageProcessing;\n"
        "Keywords=dataset;faces;annotation;labels;duplicates;\n"
        f"MimeType={MIME_TYPE};\n"
        "StartupNotify=true\n"
        "StartupWMClass=annotator\n"
    )


def mime_package() -> str:
    """shared-mime-info XML: a project is an SQLite file whose application_id is "ANNO"."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">\n'
        f'  <mime-type type="{MIME_TYPE}">\n'
        "    <comment>Annotator project</comment>\n"
        '    <sub-class-of type="application/vnd.sqlite3"/>\n'
        f'    <generic-icon name="{ICON_NAME}"/>\n'
        '    <magic priority="80">\n'
        '      <match type="string" value="SQLite format 3" offset="0">\n'
        f'        <match type="big32" value="0x{PROJECT_APPLICATION_ID:08x}" offset="68"/>\n'
        "      </match>\n"
        "    </magic>\n"
        "  </mime-type>\n"
        "</mime-info>\n"
    )


@dataclass
class DesktopFiles:
    """What install or uninstall did under ``prefix``."""

    prefix: Path
    files: list[Path] = field(default_factory=list)  # written, or removed
    refreshed: list[str] = field(default_factory=list)  # cache tools that ran
    exec_line: str = ""

    def as_dict(self) -> dict:
        return {
            "prefix": str(self.prefix),
            "files": [str(p) for p in self.files],
            "refreshed": self.refreshed,
            "exec": self.exec_line,
        }


def _targets(prefix: Path) -> dict[str, Path]:
    share = prefix / "share"
    out = {"desktop": share / "applications" / DESKTOP_FILE, "mime": share / "mime" / "packages"}
    out["mime"] = out["mime"] / MIME_FILE
    for n in ICON_SIZES:
        out[f"icon{n}"] = share / "icons" / "hicolor" / f"{n}x{n}" / "apps" / f"{ICON_NAME}.png"
    out["svg"] = share / "icons" / "hicolor" / "scalable" / "apps" / f"{ICON_NAME}.svg"
    return out


Runner = Callable[[list[str]], None]


def _run_quietly(argv: list[str]) -> None:
    subprocess.run(argv, check=False, capture_output=True, timeout=60)


def _refresh(prefix: Path, run: Runner) -> list[str]:
    """Refresh the caches the freedesktop tools keep under ``prefix`` (those found on PATH)."""
    share = prefix / "share"
    hicolor = share / "icons" / "hicolor"
    done = []
    steps = [
        ("update-desktop-database", [str(share / "applications")], share / "applications"),
        ("update-mime-database", [str(share / "mime")], share / "mime" / "packages"),
        ("gtk-update-icon-cache", ["-f", "-t", "-q", str(hicolor)], hicolor),
    ]
    for tool, args, needs in steps:
        if not needs.is_dir():
            continue
        path = shutil.which(tool)
        if path is None:
            continue
        run([path, *args])
        done.append(tool)
    return done


def _check_prefix(prefix: Path | str) -> Path:
    if not str(prefix).strip():
        raise AnnotatorError("the prefix is empty; give a folder (e.g. ~/.local)")
    try:
        p = Path(prefix).expanduser()
    except RuntimeError:  # ~user of no such user
        raise AnnotatorError(f"cannot find the home folder in the prefix {prefix}") from None
    if p.exists() and not p.is_dir():
        raise AnnotatorError(f"the prefix is not a folder: {p}")
    p = p.absolute()
    if p.parent == p:
        raise AnnotatorError(f"the prefix {p} is the root folder; give e.g. /usr/local or ~/.local")
    return p


def install(
    prefix: Path | str | None = None,
    program: list[str] | None = None,
    *,
    refresh: bool = True,
    run: Runner = _run_quietly,
) -> DesktopFiles:
    """Write the desktop entry, the icons and the MIME type under ``prefix``."""
    prefix = _check_prefix(default_prefix() if prefix is None else prefix)
    program = program or installed_program()
    targets = _targets(prefix)
    result = DesktopFiles(prefix)
    entry = desktop_entry(program)
    result.exec_line = next(
        line[len("Exec=") :] for line in entry.splitlines() if line.startswith("Exec=")
    )
    sources: dict[str, bytes] = {}
    for n in ICON_SIZES:
        src = icon_png(n)
        if not src.is_file():
            raise AnnotatorError(f"the packaged icon is missing: {src} (a broken installation)")
        sources[f"icon{n}"] = src.read_bytes()
    sources["svg"] = icon_svg().read_bytes()
    sources["desktop"] = entry.encode()
    sources["mime"] = mime_package().encode()
    for key, data in sources.items():
        dest = targets[key]
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        result.files.append(dest)
    if refresh:
        result.refreshed = _refresh(prefix, run)
    return result


def uninstall(
    prefix: Path | str | None = None, *, refresh: bool = True, run: Runner = _run_quietly
) -> DesktopFiles:
    """Remove what ``install`` wrote under ``prefix`` (only those files); absent ones are fine."""
    prefix = _check_prefix(default_prefix() if prefix is None else prefix)
    result = DesktopFiles(prefix)
    for dest in _targets(prefix).values():
        if dest.is_file() or dest.is_symlink():
            dest.unlink()
            result.files.append(dest)
    if refresh and result.files:
        result.refreshed = _refresh(prefix, run)
    _drop_empty_mime_db(prefix / "share" / "mime")
    apps = prefix / "share" / "applications"
    if apps.is_dir() and not any(apps.glob("*.desktop")):  # its cache describes nothing now
        (apps / "mimeinfo.cache").unlink(missing_ok=True)
    return result


# what update-mime-database writes beside packages/ (its caches and one XML per type)
_MIME_DB = ("aliases", "generic-icons", "globs", "globs2", "icons", "magic", "mime.cache",
            "subclasses", "treemagic", "types", "version", "XMLnamespaces")  # fmt: skip


def _drop_empty_mime_db(mime: Path) -> None:
    """With no package left in ``mime/packages`` (ours was the last), the database
    update-mime-database made for it describes nothing: remove it (only its own files)."""
    packages = mime / "packages"
    if not packages.is_dir() or any(packages.iterdir()):
        return
    for name in _MIME_DB:
        (mime / name).unlink(missing_ok=True)
    for sub in sorted(mime.iterdir()) if mime.is_dir() else []:
        if sub.is_dir() and not sub.is_symlink():
            for f in sub.glob("*.xml"):
                f.unlink()
            with contextlib.suppress(OSError):
                sub.rmdir()
    with contextlib.suppress(OSError):
        mime.rmdir()
