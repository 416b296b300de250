# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test doubles below the SDK: a scripted HTTP adapter and a static token credential.

The real azure-core pipeline runs on top of them (retry policy, bearer-token policy, LRO pollers,
error mapping), so tests see what a module sees against Azure, without a network.
"""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import requests
import urllib3
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport

Responder = Callable[[requests.PreparedRequest], Tuple[int, Dict[str, str], Any]]


class ScriptedAdapter(BaseAdapter):
    """Answers requests from a list of (METHOD, url regex, responses); records every request.

    Each route's responses are served in order, the last one repeating.
    """

    def __init__(self, routes: List[Tuple[str, str, List[Any]]]):
        super().__init__()
        self.routes = [(method, re.compile(pattern), list(responses)) for method, pattern, responses in routes]
        self.requests: List[requests.PreparedRequest] = []
        self.sent_kwargs: List[Dict[str, Any]] = []

    def route(self, method: str, pattern: str, responses: List[Any]) -> None:
        self.routes.append((method, re.compile(pattern), list(responses)))

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # pylint: disable=arguments-differ
        self.requests.append(request)
        self.sent_kwargs.append({"timeout": timeout, "verify": verify})
        for method, pattern, responses in self.routes:
            if method == request.method and pattern.search(request.url):
                answer = responses.pop(0) if len(responses) > 1 else responses[0]
                status, headers, body = answer(request) if callable(answer) else answer
                return _response(request, status, headers, body)
        return _response(request, 599, {}, {"error": {"code": "NoRoute", "message": request.method + " " + request.url}})

    def close(self):
        pass


def _response(request, status: int, headers: Dict[str, str], body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = {200: "OK", 201: "Created", 202: "Accepted", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Status")
    response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
    content = json.dumps(body).encode() if body is not None else b""
    response._content = content  # pylint: disable=protected-access
    response.raw = urllib3.HTTPResponse(body=io.BytesIO(content), headers=dict(response.headers), status=status,
                                        preload_content=False)
    response.url = request.url
    response.request = request
    return response


def session_for(adapter: ScriptedAdapter) -> requests.Session:
    """A requests session answered by ``adapter``: give it to a client as ``session=``, so that
    azure-core still builds its own transport from the client's keyword arguments."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the test environment must not replace our verify
    session.mount("https://", adapter)
    return session


def transport(adapter: ScriptedAdapter) -> RequestsTransport:
    return RequestsTransport(session=session_for(adapter), session_owner=False)


class StaticCredential:
    """A TokenCredential that hands out one token and remembers the scopes asked for."""

    def __init__(self):
        self.scopes: List[Tuple[str, ...]] = []
        self.kwargs: Dict[str, Any] = {}

    def remember(self, kwargs: Dict[str, Any]) -> "StaticCredential":
        """Stand in for an azure.identity class: record its keyword arguments."""
        self.kwargs = kwargs
        return self

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("token", int(time.time()) + 3600)


def arm_error(code: str, message: str, status: int = 400, request_id: Optional[str] = "req-1"):
    headers = {"x-ms-request-id": request_id} if request_id else {}
    return status, headers, {"error": {"code": code, "message": message}}
