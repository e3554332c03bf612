"""Shared pytest fixtures."""

from tests.support.dnsserver import dns_server  # noqa: F401
