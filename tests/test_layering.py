"""The architecture's two hard rules, checked: Qt only in gui/, SQL only in store/."""

import ast
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "annotator"
NON_GUI = ["core", "store", "formats", "cli", "demo"]


def test_non_gui_packages_import_without_qt():
    """Import every non-GUI module with PySide6 blocked: none may need Qt."""
    modules = ["annotator.model", "annotator.desktop"]
    for pkg in NON_GUI:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            if (
                f.name != "gui_cmd.py"
            ):  # the gui command imports annotator.gui lazily, inside the command
                rel = f.relative_to(ROOT).with_suffix("")
                modules.append(("annotator." + ".".join(rel.parts)).removesuffix(".__init__"))
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6'):\n"
        "            raise ImportError('Qt is blocked outside annotator.gui: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# (?!-): a program name such as "update-mime-database" is not SQL
SQL = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|BEGIN|COMMIT)\b(?!-)", re.I
)


def test_sql_only_in_store():
    offenders = []
    for f in ROOT.rglob("*.py"):
        if "store" in f.relative_to(ROOT).parts:
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL.match(node.value)
            ):
                offenders.append(f"{f.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_import_contracts_hold():
    """The layers of docs/ARCHITECTURE.md as import-linter contracts (pyproject.toml): no import
    runs up a floor, Qt only in gui/, no two modules of a package import each other."""
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT.parent,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def _imports_without(roots: tuple[str, ...], extra_modules: list[str], commands: list[str]) -> None:
    """Import the CLI, every core, store and formats module, ``extra_modules``, and load the
    CLI ``commands``, in a fresh interpreter; none of the top-level packages ``roots`` may be
    loaded by it."""
    modules = ["annotator.model", "annotator.cli.main", *extra_modules]
    for pkg in ("core", "store", "formats"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            modules.append(("annotator." + ".".join(rel.parts)).removesuffix(".__init__"))
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "from annotator.cli.main import cli\n"
        f"for name in {commands!r}:\n"
        "    cli.get_command(None, name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {roots!r})\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_nothing_but_embedding_imports_dlib():
    """dlib (the optional [embed] extra) is imported only when embeddings are computed."""
    _imports_without(
        ("dlib", "_dlib_pybind11", "face_recognition_models", "face_recognition"),
        ["annotator.cli.embed_cmd"],
        ["embed"],
    )


def test_nothing_imports_dask_without_a_scheduler():
    """dask (the optional [distributed] extra) is imported only when `--scheduler` connects."""
    _imports_without(("dask", "distributed"), ["annotator.cli.cluster_opts"], ["scan", "embed"])
