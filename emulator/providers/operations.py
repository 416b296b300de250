"""Async-operation status endpoints behind Azure-AsyncOperation and Location headers.

As recorded from Compute (Azure CLI recordings, e.g. test_vmss_create_and_modify.yaml): the status document is
{startTime, endTime (once finished), status, name, error (on failure)}; the Location URL is the same resource
with ?monitor=true, answering 202 while the operation runs and 200 with an empty body once it succeeded.
"""
from emulator.arm import ArmError, Response, ok
from emulator.server import route

_BASE = "/subscriptions/{subscriptionId}/providers/{namespace}/locations/{location}"


def _operation(ctx, req):
    op = ctx.ops.get(req.params["operationId"])
    if op is None:
        raise ArmError(404, "NotFound", f"Operation {req.params['operationId']} was not found.")
    return op


@route("GET", _BASE + "/operations/{operationId}", action="Microsoft.Resources/subscriptions/operationresults/read")
def operation_status(ctx, req):
    """Azure-AsyncOperation polling: {startTime, endTime?, status, name, error?}; with ?monitor=true the
    Location answer."""
    if req.query.get("monitor", "").lower() == "true":
        return operation_result(ctx, req)
    op = _operation(ctx, req)
    body = {"startTime": op["startTime"]}
    if "endTime" in op:
        body["endTime"] = op["endTime"]
    body.update(status=op["status"], name=op["name"])
    if "error" in op:
        body["error"] = op["error"]
    if "output" in op:
        body["properties"] = {"output": op["output"]}
    return ok(body, ctx.ops.poll_headers(op))


@route("GET", _BASE + "/operationResults/{operationId}",
       action="Microsoft.Resources/subscriptions/operationresults/read")
def operation_result(ctx, req):
    """Location polling: 202 while running; once done 200, empty unless the operation has an output (the
    ARM error envelope when it failed)."""
    op = _operation(ctx, req)
    if op["status"] == "InProgress":
        return Response(202, None, ctx.ops.poll_headers(op))
    if op["status"] == "Failed":
        error = op.get("error") or {"code": "OperationFailed", "message": "The operation failed."}
        raise ArmError(400, error.get("code", "OperationFailed"), error.get("message", ""))
    if "output" in op:
        return ok(op["output"])
    return Response(200, op.get("result"))
