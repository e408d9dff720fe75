"""The REST API: everything the CLI does, over HTTP (``evo serve``)."""

from api.app import create_app

__all__ = ["create_app"]
