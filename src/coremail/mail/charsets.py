"""Charset names as mail says them, mapped to the Python codec that decodes
what real mailers send under that name: GB2312 and GBK text is routinely
GB18030 (a superset), Big5 often carries the HKSCS extensions, Korean mail
labelled KS C 5601 is CP949; unknown names fall back to UTF-8."""
from __future__ import annotations

import codecs

_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
              "euc-cn": "gb18030", "big5": "big5hkscs", "x-big5": "big5hkscs",
              "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "x-sjis": "cp932",
              "shift_jis": "cp932", "sjis": "cp932", "iso-8859-1": "cp1252",
              "us-ascii": "cp1252", "unknown-8bit": "utf-8"}


def codec_for(charset: str | None) -> str:
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _SUPERSETS.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        return "utf-8"
    return name
