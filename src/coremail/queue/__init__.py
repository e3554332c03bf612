"""The durable outbound queue and its scheduler (the deliveragent service)."""
