"""Fixtures for the integration tests: anvil nodes the test can kill and restart, the Reverter artifact."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anvil_nodes import Node
from helpers import load_artifact


@pytest.fixture
def node() -> Iterator[Node]:
    node = Node()
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def reverter_artifact() -> dict[str, object]:
    return load_artifact("Reverter")
