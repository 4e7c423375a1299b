"""`ohai serve`: an OpenAI-compatible HTTP server over one `ohai.Model` (Starlette + uvicorn).

Needs the optional dependencies: ``pip install 'ohai[serve]'``.

    from ohai.server import ServerSettings, create_app
    app = create_app(ohai.Model(parallel=4), ServerSettings(api_key="secret"))
"""
from __future__ import annotations

from .app import ServerSettings, create_app
from .errors import APIError

__all__ = ["APIError", "ServerSettings", "create_app"]
