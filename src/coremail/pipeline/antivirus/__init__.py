"""Anti-virus: clamd (clamd.py, scan.ClamdScan) and the built-in checks of
attachments (kinds.py, archives.py, macros.py, attachments.py,
scan.AttachmentScan)."""
from .scan import AttachmentScan, ClamdScan

__all__ = ["AttachmentScan", "ClamdScan"]
