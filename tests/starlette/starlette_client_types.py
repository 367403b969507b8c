# Vendored from Starlette 1.10.0 (sdist), tests/types.py (here under another name: a types.py beside the tests would shadow the standard library's), unchanged; license: see test_staticfiles.py.

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import httpx2 as httpx

from starlette.testclient import TestClient
from starlette.types import ASGIApp

if TYPE_CHECKING:

    class TestClientFactory(Protocol):  # pragma: no cover
        def __call__(
            self,
            app: ASGIApp,
            base_url: str = "http://testserver",
            raise_server_exceptions: bool = True,
            root_path: str = "",
            cookies: httpx._types.CookieTypes | None = None,
            headers: dict[str, str] | None = None,
            follow_redirects: bool = True,
            client: tuple[str, int] = ("testclient", 50000),
        ) -> TestClient: ...
else:  # pragma: no cover

    class TestClientFactory:
        __test__ = False
