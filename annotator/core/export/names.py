"""Safe file names for an export: one path component from any identity key or source name,
and names kept unique within one folder (compared case-insensitively)."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 96

_BAD_CHARS = frozenset('/\\:*?"<>|')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in (*range(10), "¹", "²", "³")
}
_PLAIN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-~]*")


def safe_component(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One safe path component: no separators, no '..', no control or whitespace characters,
    no leading dot, not a Windows device name, at most ``max_bytes`` UTF-8 bytes, never empty."""
    if (
        len(name) <= max_bytes
        and _PLAIN.fullmatch(name)
        and ".." not in name
        and not name.endswith(".")
        and name.split(".")[0].upper() not in _RESERVED
    ):
        return name  # the common case (MIDs, rank-FaceId): nothing to change
    name = unicodedata.normalize("NFC", name)
    chars = []
    for ch in name:
        cat = unicodedata.category(ch)
        if ch in _BAD_CHARS or ch.isspace() or cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            chars.append("_")
        else:
            chars.append(ch)
    s = re.sub(r"\.{2,}", "_", "".join(chars))
    s = s.lstrip(".").rstrip(".")
    if s.split(".")[0].upper() in _RESERVED:
        s = "_" + s
    b = s.encode("utf-8")
    if len(b) > max_bytes:
        s = b[:max_bytes].decode("utf-8", "ignore").rstrip(".")
    return s or "_"


# the export's own files at the top of its folder: an identity folder never takes these names
OWN_FILES = ("manifest.csv", "manifest.json", "README.md", "pairs.txt", "pairs.bin")


class Namer:
    """Unique names within one folder, compared case-insensitively and after Unicode
    normalisation (Windows/macOS file systems), never one of ``reserved``."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._used: set[str] = {_fold(r) for r in reserved}

    def take(self, stem: str, ext: str = "") -> str:
        base = safe_component(stem, MAX_NAME_BYTES - len(ext.encode()) - 8)
        name, n = base + ext, 1
        while _fold(name) in self._used:
            n += 1
            name = f"{base}~{n}{ext}"
        self._used.add(_fold(name))
        return name


def _fold(name: str) -> str:
    """What case-insensitive, normalising file systems compare (APFS/HFS+, NTFS)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())
