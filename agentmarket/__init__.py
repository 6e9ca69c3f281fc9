"""agentmarket: settlement rails for autonomous agents on an EVM chain."""
__version__ = "0.1.0"
