"""Inbound sender authentication (SPF, DKIM, DMARC) as one message check:
`check.SenderAuth`. The libraries (pyspf, dkimpy, publicsuffixlist) do the
protocols; this package feeds them DNS answers from the project's resolver
and turns their results into one Authentication-Results field, named scores
and the DMARC policy's verdict."""
from .check import ForgedResults, SenderAuth

__all__ = ["ForgedResults", "SenderAuth"]
