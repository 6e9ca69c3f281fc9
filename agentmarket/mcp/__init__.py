"""MCP server: one agent's wallet and market actions as Model Context Protocol tools (see :mod:`.server`)."""

from .server import TOOLS, AgentTools, build_server, load_mandate, serve

__all__ = ["TOOLS", "AgentTools", "build_server", "load_mandate", "serve"]
