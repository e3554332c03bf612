from tests.ingest.conftest import world  # noqa: F401  (the same temp store + ingest)
