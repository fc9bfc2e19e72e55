"""loadtool: load testing and protocol conformance for WebSocket chat servers."""

__version__ = "0.1.0"
