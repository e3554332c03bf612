"""One way in for every message: trace headers, the blob, the summary, the
group commit with quota, and the queue entries of its remote recipients
(`service.Ingest`); where an address leads (`recipients`); the bounce
report (`bounce`)."""
from .commit import Job, LocalCopy
from .service import Ingest, new_qid

__all__ = ["Ingest", "Job", "LocalCopy", "new_qid"]
