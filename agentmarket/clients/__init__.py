"""One client per contract family: check before sending, return domain objects read from events."""
