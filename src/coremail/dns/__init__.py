"""DNS for every part of coremail: outbound MX routing, the filters (DNSBL,
SPF, DKIM, DMARC, FCrDNS) and ``coremail doctor`` ask through one ``Resolver``.

It sits beside ``mail`` and ``proto``: it knows DNS, not mail policy.
"""

from .names import InvalidName, reverse_name, split_hostport, to_ascii
from .resolver import DEFAULT_TIMEOUT, MX, Answer, Resolver, Status

__all__ = ["DEFAULT_TIMEOUT", "MX", "Answer", "InvalidName", "Resolver", "Status", "reverse_name",
           "split_hostport", "to_ascii"]
