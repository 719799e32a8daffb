"""Invented names in ten scripts and invented Freebase-style MIDs for the demo identities."""

from __future__ import annotations

import numpy as np

_CONS = "kstnmrldbpvgh"
_VOWS = "aeiou"
_CYR = dict(zip("kstnmrldbpvghaeiou", "кстнмрлдбпвгхаэиоу", strict=True))
_GRK = dict(zip("kstnmrldbpvghaeiou", "κστνμρλδμπβγχαειου", strict=True))
_ARA = dict(zip("kstnmrldbpvghaeiou", "كستنمرلدبپفغهاييوو", strict=True))
_KATA_ROWS = {  # consonant -> katakana for a, i, u, e, o
    "k": "カキクケコ",
    "s": "サシスセソ",
    "t": "タチツテト",
    "n": "ナニヌネノ",
    "m": "マミムメモ",
    "r": "ラリルレロ",
    "l": "ラリルレロ",
    "d": "ダヂヅデド",
    "b": "バビブベボ",
    "p": "パピプペポ",
    "v": "ヴァヴィヴヴェヴォ",
    "g": "ガギグゲゴ",
    "h": "ハヒフヘホ",
}
_KATA_VOWEL = {"a": 0, "i": 1, "u": 2, "e": 3, "o": 4}
_HANGUL_L = {
    "k": 0,
    "s": 9,
    "t": 3,
    "n": 2,
    "m": 6,
    "r": 5,
    "l": 5,
    "d": 3,
    "b": 7,
    "p": 17,
    "v": 7,
    "g": 0,
    "h": 18,
}
_HANGUL_V = {"a": 0, "e": 5, "i": 20, "o": 8, "u": 13}
_HANZI = "卡萨塔纳马拉达巴帕瓦加哈基西蒂尼米里迪比皮维吉希库苏图努穆鲁杜布普武古胡科索托诺莫罗多博波沃戈霍"
LANGS = ("de", "fr", "es", "it", "ru", "el", "ar", "ja", "zh", "ko")


def _word(rng: np.random.Generator, syllables: int) -> list[str]:
    return [
        _CONS[int(rng.integers(len(_CONS)))] + _VOWS[int(rng.integers(len(_VOWS)))]
        for _ in range(syllables)
    ]


def _kata(syl: str) -> str:
    row = _KATA_ROWS[syl[0]]
    if syl[0] == "v":
        return ("ヴァ", "ヴィ", "ヴ", "ヴェ", "ヴォ")[_KATA_VOWEL[syl[1]]]
    return row[_KATA_VOWEL[syl[1]]]


def _hangul(syl: str) -> str:
    return chr(0xAC00 + (_HANGUL_L[syl[0]] * 21 + _HANGUL_V[syl[1]]) * 28)


def _render_name(words: list[list[str]], lang: str) -> str:
    if lang in ("en", "de", "fr", "es", "it"):
        return " ".join("".join(w).capitalize() for w in words)
    if lang == "ru":
        return " ".join("".join(_CYR[ch] for ch in "".join(w)).capitalize() for w in words)
    if lang == "el":
        return " ".join("".join(_GRK[ch] for ch in "".join(w)).capitalize() for w in words)
    if lang == "ar":
        return " ".join("".join(_ARA[ch] for ch in "".join(w)) for w in words)
    if lang == "ja":
        return "・".join("".join(_kata(s) for s in w) for w in words)
    if lang == "ko":
        return " ".join("".join(_hangul(s) for s in w) for w in words)
    if lang == "zh":
        return "·".join(
            "".join(_HANZI[(_CONS.index(s[0]) * 5 + _VOWS.index(s[1])) % len(_HANZI)] for s in w)
            for w in words
        )
    raise ValueError(lang)


def invent_names(rng: np.random.Generator) -> dict[str, str]:
    """An invented person's name in English and 1-4 other languages (several scripts)."""
    words = [_word(rng, int(rng.integers(2, 4))), _word(rng, int(rng.integers(2, 4)))]
    k = int(rng.integers(1, 5))
    langs = ["en"] + sorted(str(x) for x in rng.choice(LANGS, size=k, replace=False))
    return {lang: _render_name(words, lang) for lang in langs}


_MID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz_"


def invent_mid(rng: np.random.Generator) -> str:
    """A Freebase-style MID such as ``m.0abc12`` (invented)."""
    k = int(rng.integers(4, 7))
    return "m.0" + "".join(_MID_CHARS[int(i)] for i in rng.integers(0, len(_MID_CHARS), k))


# --------------------------------------------------------------------------------------------
# The dataset
