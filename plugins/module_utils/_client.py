# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SDK client factory: builds only the management client a module asks for.

A module that reads scale sets imports azure.mgmt.compute and nothing else from azure.mgmt;
each SDK is imported by name the first time ``client(name)`` is called. Start-up overlaps its two
slow halves: the first client's SDK import (CPU) runs while the ARM token is requested (network,
on a background thread, see TokenPrefetch). The SDK imports run with the cyclic garbage collector paused
(see gc_paused).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import threading
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional

COLLECTION_VERSION = "0.1.0"  # kept equal to galaxy.yml's version by a unit test
USER_AGENT = "fleetops.vmss/" + COLLECTION_VERSION


class SdkClient(NamedTuple):
    package: str        # import name
    class_name: str
    requirement: str    # pip name, for the missing-library message


SDK_CLIENTS: Dict[str, SdkClient] = {
    "compute": SdkClient("azure.mgmt.compute", "ComputeManagementClient", "azure-mgmt-compute"),
    "monitor": SdkClient("azure.mgmt.monitor", "MonitorManagementClient", "azure-mgmt-monitor"),
    "imagebuilder": SdkClient("azure.mgmt.imagebuilder", "ImageBuilderClient", "azure-mgmt-imagebuilder"),
    "msi": SdkClient("azure.mgmt.msi", "ManagedServiceIdentityClient", "azure-mgmt-msi"),
    "authorization": SdkClient("azure.mgmt.authorization", "AuthorizationManagementClient",
                               "azure-mgmt-authorization"),
    "network": SdkClient("azure.mgmt.network", "NetworkManagementClient", "azure-mgmt-network"),
}


class MissingLibrary(Exception):
    """An SDK package is not installed where the module runs."""

    def __init__(self, requirement: str, error: Exception):
        super().__init__("%s is required: %s" % (requirement, error))
        self.requirement = requirement
        self.error = error


@dataclass(frozen=True)
class Tuning:
    """Pipeline behaviour shared by every client.

    azure-core's RetryPolicy retries 408, 429 and 5xx answers and connection errors, sleeping for
    Retry-After (or retry-after-ms) when the service sends one, else backing off exponentially:
    nothing before the first retry, then ``retry_backoff_factor * 2 ** n`` seconds capped at
    ``retry_backoff_max``. It also has per-kind limits (connect, read, status; 3 by default) that
    stop retries before ``retry_total``: client_kwargs raises them with the total.
    With these numbers, 7 retries back off 0 + 1.6 + 3.2 + 6.4 + 12.8 + 20 + 20 = 64 s, so a request
    rides out an outage of about a minute (RETRY_WINDOW), then fails.
    ``polling_interval`` is the LRO poll period used only when a response has no Retry-After.
    """

    retry_total: int = 7
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 20.0
    connection_timeout: float = 20.0
    read_timeout: float = 120.0
    polling_interval: float = 15.0

    def backoff(self, retry: int) -> float:
        """Seconds azure-core sleeps before retry number ``retry`` (1-based) without a Retry-After."""
        return 0.0 if retry <= 1 else min(self.retry_backoff_max, self.retry_backoff_factor * 2 ** (retry - 1))


RETRY_WINDOW = round(sum(Tuning().backoff(retry) for retry in range(1, Tuning().retry_total + 1)), 1)  # 64 s


def client_kwargs(cloud, connection_verify, tuning: Tuning = Tuning()) -> Dict[str, object]:
    """Keyword arguments for any azure.mgmt.* client class: pure, so tests can read them."""
    return {
        "base_url": cloud.resource_manager,
        "credential_scopes": [cloud.scope],
        "connection_verify": connection_verify,
        "user_agent": USER_AGENT,
        "retry_total": tuning.retry_total,
        # azure-core stops at the first exhausted limit: each kind may use the whole total
        "retry_connect": tuning.retry_total,
        "retry_read": tuning.retry_total,
        "retry_status": tuning.retry_total,
        "retry_backoff_factor": tuning.retry_backoff_factor,
        "retry_backoff_max": tuning.retry_backoff_max,
        "connection_timeout": tuning.connection_timeout,
        "read_timeout": tuning.read_timeout,
        "polling_interval": tuning.polling_interval,
    }


class _GcPause:
    """Reference-counted pause of the cyclic garbage collector, shared by every thread of the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = False

    @contextlib.contextmanager
    def __call__(self):
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.was_enabled:
                    gc.freeze()  # what was imported lives as long as the process: no collection scans it again
                    gc.enable()


# An SDK import creates some 100,000 long-lived objects (classes, typing aliases, functions): with the collector
# on, it scans them again and again while they load, finding nothing to free (about 15% of the import's CPU).
gc_paused = _GcPause()


def load_client_class(name: str):
    """Import one SDK by its short name ("compute", "monitor", ...) and return its client class."""
    try:
        sdk = SDK_CLIENTS[name]
    except KeyError:
        raise ValueError("Unknown SDK client %r: expected one of %s" % (name, ", ".join(SDK_CLIENTS))) from None
    try:
        with gc_paused():
            return getattr(importlib.import_module(sdk.package), sdk.class_name)
    except ImportError as exc:
        raise MissingLibrary(sdk.requirement, exc) from exc


def import_in_background(package: str) -> None:
    """Start importing ``package`` on a daemon thread, to overlap its CPU time with a network wait.

    Whoever imports it next waits on Python's per-module import lock until that import is done, then
    gets the module, or the ImportError again (the thread keeps nothing). Only for packages that share
    no module with what the calling thread imports meanwhile (a cycle between the two would deadlock).
    """

    def run() -> None:
        try:
            with gc_paused():
                importlib.import_module(package)
        except Exception:  # pylint: disable=broad-except  # the next import raises it where it is handled
            pass

    threading.Thread(target=run, name="import-" + package, daemon=True).start()


class RequestCounter:
    """Counts the HTTP requests the clients of one factory send to Azure Resource Manager.

    Every request on the wire counts: retries (429, 5xx) and long-running-operation polls included,
    token requests (the credential's own pipeline) not. ``by_method`` splits the total by HTTP method,
    so ``writes`` (PUT, PATCH, POST, DELETE) can be told from reads. Installed by ClientFactory as a
    per-retry policy of the azure-core pipeline (after the retry policy, so each attempt is seen).
    """

    WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")

    def __init__(self) -> None:
        self.total = 0
        self.by_method: Dict[str, int] = {}

    def record(self, method: str) -> None:
        method = (method or "").upper()
        self.total += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1

    @property
    def writes(self) -> int:
        return sum(self.by_method.get(method, 0) for method in self.WRITE_METHODS)

    def as_dict(self) -> Dict[str, object]:
        return {"total": self.total, "by_method": dict(sorted(self.by_method.items()))}

    def policy(self):
        """An azure-core SansIOHTTPPolicy feeding this counter (azure.core imported only here)."""
        from azure.core.pipeline.policies import SansIOHTTPPolicy  # pylint: disable=import-outside-toplevel

        counter = self

        class CountingPolicy(SansIOHTTPPolicy):
            def on_request(self, request):  # pylint: disable=arguments-renamed
                counter.record(request.http_request.method)

        return CountingPolicy()


class TokenPrefetch:
    """A credential whose first token for ``scope`` is requested at once, on a background thread.

    The first ``get_token_info`` (or ``get_token``) for that scope, made by a client's pipeline on
    its first request, waits for that answer and returns it, or raises its exception (so a wrong
    secret fails where it always did, and the token endpoint is asked once). Every other call, and
    every later one, goes to the credential, whose own cache serves the token until it expires.
    """

    def __init__(self, credential, scope: str):
        self._credential = credential
        self._scope = scope
        self._method = "get_token_info" if hasattr(credential, "get_token_info") else "get_token"
        self._outcome: tuple = (None, None)
        self._thread: Optional[threading.Thread] = threading.Thread(target=self._fetch, name="token-prefetch",
                                                                    daemon=True)
        self._thread.start()

    def _fetch(self) -> None:
        try:
            self._outcome = (getattr(self._credential, self._method)(self._scope), None)
        except Exception as exc:  # pylint: disable=broad-except  # raised again on first use
            self._outcome = (None, exc)

    def __getattr__(self, name: str):
        attribute = getattr(self._credential, name)
        if name != self._method:
            return attribute

        def first_token(*scopes, **kwargs):
            # kwargs: azure-core passes options={} (or claims, tenant_id, ... when it needs another token)
            if self._thread is not None and scopes == (self._scope,) and not any(kwargs.values()):
                self._thread.join()
                self._thread = None
                token, error = self._outcome
                self._outcome = (None, None)
                if error is not None:
                    raise error
                return token
            return attribute(*scopes, **kwargs)

        return first_token


class ClientFactory:
    """One credential, one cloud, one subscription; clients built on first use and reused.

    ``requests`` counts what every client of the factory sends to ARM (see RequestCounter).
    """

    def __init__(self, credential, cloud, subscription_id: str, connection_verify, tuning: Tuning = Tuning()):
        self.credential = credential
        self.cloud = cloud
        self.subscription_id = subscription_id
        self.kwargs = client_kwargs(cloud, connection_verify, tuning)  # shared by every client
        self.requests = RequestCounter()
        self._clients: Dict[str, object] = {}
        self._client_credential = None  # the credential wrapped in TokenPrefetch, from the first client on

    def client(self, name: str):
        if name not in self._clients:
            if self._client_credential is None:  # the token's round trip overlaps the SDK import below
                self._client_credential = TokenPrefetch(self.credential, self.cloud.scope)
            client_class = load_client_class(name)
            self._clients[name] = client_class(self._client_credential, self.subscription_id,
                                               per_retry_policies=[self.requests.policy()], **self.kwargs)
        return self._clients[name]
