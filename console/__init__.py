"""yinxin's web console and HTTP API: an edge like the CLI, on the same home and database.

People of the flow work in a browser (server-rendered pages, a little vendored JavaScript for placing
a seal); other systems call ``/api/v1/`` with an API token.  Both call the same library APIs as the
CLI for an authenticated actor; the console holds no rules of its own.

Public API (imported on first use, PEP 562)::

    from console import create_app, serve, ConsoleOptions
    app = create_app(home, ConsoleOptions())          # one worker's ASGI application
    serve(home, ConsoleOptions(port=8443, workers=4))  # several workers on one socket
"""
from __future__ import annotations

from pki.lazy import lazy_exports

_LAZY = {"create_app": "app", "serve": "run", "ConsoleOptions": "options", "ConsoleError": "errors",
         "answer_for": "errors"}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
