# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SDK exceptions turned into one clear failure: ``Failed to <action> <resource>: <code>: <message>``.

module_utils and modules write::

    with arm_errors("get", "scale set rg/name"):
        scale_set = compute.virtual_machine_scale_sets.get("rg", "name")

and an Azure error is raised as AzureFailure (message, ``error={code, message, status, request_id}``, the
result so far); the module catches it once and fails with it (``AzureModule.fail_from``).
azure.core is imported only once an exception is on its way out.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Optional

from ._waiter import WaitTimeout

# Codes for failures that never reached ARM, so carry no ARM error code.
_TRANSPORT_CODES = {
    "ClientAuthenticationError": "AuthenticationFailed",
    "ServiceRequestTimeoutError": "Timeout",
    "ServiceResponseTimeoutError": "Timeout",
    "ServiceRequestError": "ConnectionFailed",
    "ServiceResponseError": "ConnectionFailed",
}


def error_details(exc: BaseException) -> Dict[str, Any]:
    """{code, message, status, request_id} from an azure-core exception (or our timeout)."""
    response = getattr(exc, "response", None)
    odata = getattr(exc, "error", None)  # ARM envelope, also the body of a failed LRO status
    code = getattr(odata, "code", None)
    message = getattr(odata, "message", None)
    status = getattr(exc, "status_code", None)
    if not code:
        if isinstance(exc, WaitTimeout):
            code = "Timeout"
        elif status:
            code = "HTTP %s" % status
        else:
            code = _transport_code(exc)
    if not message:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    message = " ".join(str(message).split())
    # ARM puts the precise reason of a generic failure (BadRequest, DeploymentFailed) in details.
    inner = ["%s: %s" % (d.code, " ".join(str(d.message).split()))
             for d in getattr(odata, "details", None) or [] if getattr(d, "code", None)]
    if inner:
        message = "%s (%s)" % (message, "; ".join(inner))
    headers = getattr(response, "headers", None) or {}
    request_id = headers.get("x-ms-request-id") or headers.get("x-ms-correlation-request-id")
    return {"code": code, "message": message, "status": status, "request_id": request_id}


def operation_error(exc: BaseException) -> Dict[str, Any]:
    """error_details plus ``targets``: what ARM's error details name (the failing instances of a batch)."""
    details = error_details(exc)
    odata = getattr(exc, "error", None)
    details["targets"] = [str(d.target) for d in getattr(odata, "details", None) or [] if getattr(d, "target", None)]
    if getattr(odata, "target", None):
        details["targets"].append(str(odata.target))
    return details


def is_handled(exc: BaseException) -> bool:
    """An Azure SDK error (or our timeout): reported as a failure, not raised as a bug."""
    return _is_handled(exc)


# Answers that say "not now", not "no": throttled, the service failing, another operation holding the resource.
TRANSIENT_STATUSES = (409, 429)


def is_transient(exc: BaseException) -> bool:
    """A fault that outlasted the SDK's retries but says nothing of what was asked: HTTP 429, any 5xx, 409
    (Azure's "another operation is in progress" ``OperationNotAllowed``, ``Conflict``), or no answer at all
    (``ServiceRequestError``, ``ServiceResponseError``: refused, dropped or timed-out connections).

    A long-running operation that ended Failed is not one: its poll answered 200 with Azure's verdict.
    Our own WaitTimeout is not one either (the run's time is spent, the caller decides).
    """
    if isinstance(exc, WaitTimeout):
        return False
    status = getattr(exc, "status_code", None)
    if status:
        return status in TRANSIENT_STATUSES or 500 <= status <= 599
    names = {klass.__name__ for klass in type(exc).__mro__}
    return bool(names & {"ServiceRequestError", "ServiceResponseError"})


def _transport_code(exc: BaseException) -> str:
    for klass in type(exc).__mro__:
        if klass.__name__ in _TRANSPORT_CODES:
            return _TRANSPORT_CODES[klass.__name__]
    return type(exc).__name__


# A conditional write (If-Match with the ETag read) refused: say what it means.
PRECONDITION_HINT = ("%s was changed by someone else after this task read it (its ETag no longer matches); "
                     "nothing was written: run the task again to compare with the new state")


def failure_message(action: str, resource: str, details: Dict[str, Any]) -> str:
    message = details["message"]
    if details.get("status") == 412:
        message = "%s (%s)" % (message, PRECONDITION_HINT % (resource[:1].upper() + resource[1:]))
    return "Failed to %s %s: %s: %s" % (action, resource, details["code"], message)


def _is_handled(exc: BaseException) -> bool:
    if isinstance(exc, WaitTimeout):
        return True
    try:
        from azure.core.exceptions import AzureError  # pylint: disable=import-outside-toplevel
    except ImportError:
        return False
    return isinstance(exc, AzureError)


class AzureFailure(Exception):
    """The one failure module_utils raise: the module's message, ARM's ``error`` details (error_details, None
    when the failure is not an ARM answer), the ``result`` keys known so far, and whether it was ``transient``
    (a fault that outlasted the retries, is_transient: not a verdict on what was asked)."""

    def __init__(self, msg: str, error: Optional[Dict[str, Any]] = None, transient: bool = False, **result: Any):
        super().__init__(msg)
        self.msg = msg
        self.error = error
        self.transient = transient
        self.result = result

    @property
    def details(self) -> Dict[str, Any]:
        return self.error or {}


def arm_failure(action: str, resource: str, details: Dict[str, Any], transient: bool = False,
                **result: Any) -> AzureFailure:
    """``Failed to <action> <resource>: <code>: <message>`` carrying ``details`` as its ``error``."""
    return AzureFailure(failure_message(action, resource, details), error=details, transient=transient, **result)


@contextmanager
def arm_errors(action: str, resource: str):
    """Raise AzureFailure with one message for any Azure error raised inside the block; other exceptions
    (bugs) propagate."""
    try:
        yield
    except Exception as exc:  # pylint: disable=broad-except
        if not _is_handled(exc):
            raise
        raise arm_failure(action, resource, error_details(exc), transient=is_transient(exc)) from exc


def ignore_not_found(call: Callable[[], Any], default: Optional[Any] = None) -> Any:
    """``call()``, or ``default`` when ARM answers 404 (the resource or its group is absent)."""
    from azure.core.exceptions import ResourceNotFoundError  # pylint: disable=import-outside-toplevel

    try:
        return call()
    except ResourceNotFoundError:
        return default
