"""Which files are dangerous to mail around: by name (the extension a
desktop opens by running it) and by content (the first bytes: programs,
shortcuts, disk images), and which names and headers are archives to look
into. Plain tables and two small functions; no I/O."""
from __future__ import annotations

# extension -> what it is, in the words of a refusal
DANGEROUS_NAMES: dict[str, str] = {
    **dict.fromkeys(("exe", "com", "scr", "pif", "cpl", "msi", "msp", "msc", "dll", "sys",
                     "appx", "msix", "gadget", "application"), "a Windows program"),
    **dict.fromkeys(("bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc", "hta",
                     "ps1", "psm1", "reg", "scf", "inf", "jar", "sct", "xll"), "a script"),
    **dict.fromkeys(("lnk", "url", "website", "settingcontent-ms", "library-ms"), "a shortcut"),
    **dict.fromkeys(("iso", "img", "vhd", "vhdx", "dmg", "udf"), "a disk image"),
    "chm": "a compiled help file (runs scripts)",
}

ARCHIVE_NAMES = {"zip": "zip", "7z": "7z", "rar": "rar"}


def by_name(filename: str) -> str | None:
    """What a file name says it is, when that is dangerous (the last extension
    counts, so "invoice.pdf.exe" is a program)."""
    name = filename.strip().strip(".").lower()
    if "." not in name:
        return None
    return DANGEROUS_NAMES.get(name.rsplit(".", 1)[1])


def by_content(head: bytes, tail: bytes = b"", name: str = "") -> str | None:
    """What the first bytes (at least 64 KiB where there are) say a file is,
    when that is dangerous; `tail` is the last 512 bytes (VHD, DMG). A "#!"
    script counts only without an extension (a mailed notes.txt is text)."""
    if head[:2] == b"MZ":
        return "a Windows program"
    if head[:4] == b"\x7fELF":
        return "a Linux program"
    if head[:4] in (b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
                    b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return "a macOS program"
    if head[:20] == b"L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00F":
        return "a shortcut"
    if head[:2] == b"#!" and "." not in name.rsplit("/", 1)[-1]:
        return "a script"
    if head[:8] == b"conectix" or tail[:8] == b"conectix" or head[:8] == b"vhdxfile":
        return "a disk image"
    if tail[:4] == b"koly":
        return "a disk image"
    for off in (0x8001, 0x8801, 0x9001):
        if head[off:off + 5] == b"CD001":
            return "a disk image"
    if head[:4] == b"ITSF":
        return "a compiled help file (runs scripts)"
    return None


def archive_kind(filename: str, head: bytes) -> str | None:
    """"zip", "7z" or "rar" when the header or, failing that, the name says so."""
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:7] == b"Rar!\x1a\x07\x00" or head[:8] == b"Rar!\x1a\x07\x01\x00":
        return "rar"
    name = filename.lower()
    return ARCHIVE_NAMES.get(name.rsplit(".", 1)[1]) if "." in name else None


def office_kind(filename: str, head: bytes) -> bool:
    """An OLE (old Office) file or an Office Open XML one, where macros live."""
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return True
    ext = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    return ext in ("docm", "xlsm", "pptm", "dotm", "xltm", "xlam", "ppsm", "potm", "docx",
                   "xlsx", "pptx", "doc", "xls", "ppt", "xlsb") and head[:2] == b"PK"
