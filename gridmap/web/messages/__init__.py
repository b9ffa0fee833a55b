"""English for the Chinese messages of one area of the app, one module an area.

Each module here defines ``EN: dict[str, str]`` (Chinese message → English); ``gridmap.web.i18n``
merges them all into its ``EN`` at import. An area keeps its own messages beside the others, so
work on two areas never edits the same dictionary. A message defined twice with two different
English texts is an error at import.
"""
from __future__ import annotations

import importlib
import pkgutil


def collect() -> dict[str, str]:
    merged: dict[str, str] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        en = importlib.import_module(f"{__name__}.{mod.name}").EN
        for zh, text in en.items():
            if zh in merged and merged[zh] != text:
                raise ValueError(f"gridmap.web.messages.{mod.name}: {zh!r} is already translated as "
                                 f"{merged[zh]!r}, not {text!r}")
            merged[zh] = text
    return merged
