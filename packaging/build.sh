#!/bin/sh
# Build the one-folder program with PyInstaller, then run it the way a machine without this
# Python would: `demo` and `gui --screenshot` in a clean environment (env -i, a fresh HOME,
# PATH=/usr/bin:/bin, no PYTHONPATH). With strace on PATH it also checks that the frozen
# program opens no file of the Python that built it.
#
#   packaging/build.sh [OUT]      (default OUT: ./build; the program is OUT/dist/annotator/annotator)
#
# Needs PyInstaller: python3 -m pip install -e '.[packaging]'
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${1:-$ROOT/build}
PYTHON=${PYTHON:-python3}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "error: PyInstaller is not installed; run: $PYTHON -m pip install -e '.[packaging]'" >&2
    exit 1
fi

start=$(date +%s)
(cd "$ROOT" && "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/work" packaging/annotator.spec)
built=$(date +%s)
APP="$OUT/dist/annotator/annotator"
[ -x "$APP" ] || { echo "error: no program at $APP" >&2; exit 1; }

# --- run it without the project's Python ------------------------------------------------------
PY_PREFIX=$("$PYTHON" -c "import sys, os; print(os.path.realpath(sys.base_prefix))")
CHECK="$OUT/check"
rm -rf "$CHECK"
mkdir -p "$CHECK/home"
clean() {
    env -i HOME="$CHECK/home" PATH=/usr/bin:/bin LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$@"
}
TRACE=""
if command -v strace >/dev/null 2>&1; then
    # -ff: one log per process, trace.log.PID
    TRACE="strace -ff -qq -e trace=open,openat,execve -o $CHECK/trace.log"
fi

cd "$CHECK"
clean $TRACE "$APP" demo "$CHECK/demo" --identities 4 --json > "$CHECK/demo.json"
clean $TRACE "$APP" gui "$CHECK/demo/demo.db" --reviewer build-check \
    --screenshot "$CHECK/window.png"
clean "$APP" install-desktop --prefix "$CHECK/prefix" --json > "$CHECK/install.json"
clean "$APP" --version

[ -s "$CHECK/window.png" ] || { echo "error: the frozen gui wrote no screenshot" >&2; exit 1; }
if [ -n "$TRACE" ]; then
    # a successful open of a file under the building Python's prefix would mean it leaked in
    if cat "$CHECK"/trace.log.* | grep -v ENOENT | grep -F "\"$PY_PREFIX/" > "$CHECK/leaks.log"; then
        echo "error: the frozen program opened files of $PY_PREFIX:" >&2
        head -5 "$CHECK/leaks.log" >&2
        exit 1
    fi
    echo "strace: no file under $PY_PREFIX was opened"
fi
SIZE=$(du -sm "$OUT/dist/annotator" | cut -f1)
echo "built $OUT/dist/annotator in $((built - start)) s: ${SIZE} MB"
echo "frozen demo, gui --screenshot and install-desktop ran in a clean environment: $CHECK"
