"""Async-operation status endpoints behind Azure-AsyncOperation and Location headers."""
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
    """Azure-AsyncOperation polling: {status, startTime, endTime?, error?}."""
    op = _operation(ctx, req)
    body = {"name": op["name"], "status": op["status"], "startTime": op["startTime"]}
    for key in ("endTime", "error"):
        if key in op:
            body[key] = op[key]
    if "output" in op:
        body["properties"] = {"output": op["output"]}
    headers = ctx.ops.lro_headers(op, location_header=False) if op["status"] == "InProgress" else {}
    headers.pop("Azure-AsyncOperation", None)
    return ok(body, headers)


@route("GET", _BASE + "/operationResults/{operationId}",
       action="Microsoft.Resources/subscriptions/operationresults/read")
def operation_result(ctx, req):
    """Location polling: 202 while running, then the final result (or the ARM error)."""
    op = _operation(ctx, req)
    if op["status"] == "InProgress":
        headers = ctx.ops.lro_headers(op)
        headers.pop("Azure-AsyncOperation", None)
        return Response(202, None, headers)
    if op["status"] == "Failed":
        error = op.get("error") or {"code": "OperationFailed", "message": "The operation failed."}
        raise ArmError(400, error.get("code", "OperationFailed"), error.get("message", ""))
    if "output" in op:
        return ok(op["output"])
    return Response(200 if op.get("result") else 204, op.get("result"))
