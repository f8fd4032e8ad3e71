"""Fixtures for the AG2 FilesAPI tests (ag2 1.x with its openai, anthropic and gemini extras)."""

from tests.frontdoor.sdk_fixtures import dock, face, make_dock, vendor_dock

__all__ = ["dock", "face", "make_dock", "vendor_dock"]
