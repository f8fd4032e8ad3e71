"""FileDock: a self-hosted server for the OpenAI Files API."""

__version__ = "0.1.0"
