"""Clients: one module per contract family. Each checks before sending and returns domain objects."""
