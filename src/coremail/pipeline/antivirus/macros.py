"""Office documents with macros, found by oletools' olevba (the well-kept
parser of OLE and Office Open XML files): a macro is scored, one that runs
on opening and does something suspicious (shell, download, ...) more."""
from __future__ import annotations

import logging
import warnings

logging.getLogger("olevba").setLevel(logging.CRITICAL)   # it logs parse trouble as errors


def macro_words(filename: str, data: bytes) -> str | None:
    """None, or what the macros of this document do, in words."""
    try:
        with warnings.catch_warnings():   # its pyparsing grammar warns of old spellings
            warnings.simplefilter("ignore")
            from oletools.olevba import VBA_Parser
    except ImportError:
        return None
    try:
        vp = VBA_Parser(filename or "document", data=data)
    except Exception:          # not an Office file after all, or a broken one
        return None
    try:
        if not vp.detect_vba_macros():
            return None
        kinds = {kind for kind, _kw, _desc in vp.analyze_macros() or ()}
    except Exception:
        return "Office macros (that could not be analysed)"
    finally:
        vp.close()
    if "AutoExec" in kinds and "Suspicious" in kinds:
        return "Office macros that run on opening and look suspicious"
    if "AutoExec" in kinds:
        return "Office macros that run on opening"
    return "Office macros"
