# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AzureModule, the thin wrapper every fleetops.vmss module starts from, and result shaping.

AzureModule merges the shared options (doc fragment ``fleetops.vmss.azure``) into the module's
argument_spec, resolves credentials and cloud on first use, and hands out SDK clients by name::

    module = AzureModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    compute = module.client("compute")
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Dict, Optional

from ansible.module_utils.basic import AnsibleModule, _load_params, missing_required_lib
from ansible.module_utils.common.validation import check_type_dict

from ._auth import AUTH_SOURCES, AuthError, build_credential, resolve_cloud, resolve_settings
from ._client import ClientFactory, MissingLibrary, Tuning
from ._ids import resource_group_of
from ._names import to_snake
from ._validate import option_errors

# Keep in sync with plugins/doc_fragments/azure.py (validate-modules checks each module).
AUTH_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "subscription_id": {"type": "str"},
    "client_id": {"type": "str"},
    "secret": {"type": "str", "no_log": True},
    "tenant": {"type": "str"},
    "auth_source": {"type": "str", "choices": list(AUTH_SOURCES)},
    "profile": {"type": "str"},
    "cloud_environment": {"type": "str"},
    "cert_validation_mode": {"type": "str", "choices": ["validate", "ignore"]},
    "ca_bundle": {"type": "path"},
}

WAIT_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 1800},
    "wait_sleep": {"type": "float", "default": 10.0},
}

# Modules that take a scale set's lease (_lease); keep in sync with the doc fragment fleetops.vmss.azure.lease.
LEASE_ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "force_lease": {"type": "bool", "default": False},
    "keep_lease": {"type": "bool", "default": False},
    "lease_run": {"type": "str"},
    "lease_controller_pid": {"type": "int"},
}


def connect(params: Dict[str, Any], environ, tuning: Tuning = Tuning()) -> ClientFactory:
    """The client factory for these options (module or inventory plugin), the environment and the profile.

    Raises AuthError (one sentence for the user) or ImportError (azure-identity missing).
    """
    try:
        settings = resolve_settings(params, environ)
        cloud = resolve_cloud(settings.cloud_environment, settings.connection_verify)
        credential = build_credential(settings, cloud)
    except ValueError as exc:  # azure-identity rejecting a malformed tenant or authority
        raise AuthError("Invalid Azure credentials: %s" % exc) from exc
    return ClientFactory(credential, cloud, settings.subscription_id, settings.connection_verify, tuning)


class AzureModule:
    """AnsibleModule plus Azure: ``client(name)``, ``subscription_id``, ``cloud``."""

    def __init__(self, argument_spec: Dict[str, Any], wait: bool = False,
                 names: Optional[Dict[str, str]] = None, lease: bool = False, **kwargs: Any):
        """``names``: which kind of Azure resource the module's own options name (``{"name": "scale_set"}``),
        checked by Azure's naming rules with every other value (``_validate``) before any request."""
        spec = dict(AUTH_ARGUMENT_SPEC)
        if wait:
            spec.update(WAIT_ARGUMENT_SPEC)
        if lease:
            spec.update(LEASE_ARGUMENT_SPEC)
        spec.update(argument_spec)
        raw = _load_params()
        errors = argument_shape_errors(spec, raw)
        if errors:  # before AnsibleModule, which would raise a TypeError on them (a traceback for the user);
            # the way ansible-core's own _load_params fails when it cannot read the arguments at all
            print(json.dumps({"failed": True, "msg": "Invalid options: %s" % " ".join(errors)}))  # pylint: disable=ansible-bad-function
            sys.exit(1)  # pylint: disable=ansible-bad-function
        self.ansible = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.ansible.params
        errors = option_errors(spec, self.params, raw, names)
        if errors:
            self.ansible.fail_json(msg="Invalid options: %s" % " ".join(errors))
        self.check_mode = self.ansible.check_mode
        self._factory: Optional[ClientFactory] = None
        # called with the result before the module exits, whatever the outcome (a lease released: _lease)
        self.on_exit: list = []

    def _connect(self) -> ClientFactory:
        if self._factory is None:
            tuning = Tuning(polling_interval=self.params["wait_sleep"]) if "wait_sleep" in self.params else Tuning()
            try:
                self._factory = connect(self.params, os.environ, tuning)
            except AuthError as exc:
                self.fail_json(msg=str(exc))
            except ImportError as exc:
                self.fail_json(msg=missing_required_lib("azure-identity"), exception=str(exc))
        return self._factory

    @property
    def subscription_id(self) -> str:
        return self._connect().subscription_id

    @property
    def cloud(self):
        return self._connect().cloud

    @property
    def requests(self):
        """The RequestCounter of every ARM request this module sent (None before the first client)."""
        return self._factory.requests if self._factory is not None else None

    @property
    def arm_requests(self) -> int:
        return self._factory.requests.total if self._factory is not None else 0

    def client(self, name: str):
        """The SDK client for ``name`` ("compute", "monitor", "imagebuilder", "msi", "authorization")."""
        factory = self._connect()
        try:
            return factory.client(name)
        except MissingLibrary as exc:
            self.fail_json(msg=missing_required_lib(exc.requirement), exception=str(exc.error))
        return None  # not reached: fail_json exits

    def exit_json(self, **kwargs: Any) -> None:
        self._exiting(kwargs)
        self.ansible.exit_json(**kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> None:
        self._exiting(kwargs)
        self.ansible.fail_json(msg=msg, **kwargs)

    def fail_from(self, failure, **result: Any) -> None:
        """Fail with an AzureFailure (_errors): its message, its ARM ``error`` (when it has one), the result it
        carries, ``result`` (what the module knows at the catch) and ``transient: true`` for a fault that outlasted
        the retries (the roles read it: an interruption that a re-run resumes, not a verdict)."""
        values = dict(failure.result, **result)
        if failure.error is not None:
            values["error"] = failure.error
        if failure.transient:
            values["transient"] = True
        self.fail_json(failure.msg, **values)

    def _exiting(self, result: Dict[str, Any]) -> None:
        hooks, self.on_exit = self.on_exit, []
        for hook in hooks:
            hook(result)

    def warn(self, warning: str) -> None:
        self.ansible.warn(warning)

    @property
    def diff_mode(self) -> bool:
        return bool(getattr(self.ansible, "_diff", False))


def _as_dict(value: Any) -> Optional[Dict[str, Any]]:
    """A dict option's value as Ansible will read it (dict, JSON or key=value text), else None."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            return check_type_dict(value)
        except TypeError:
            return None
    return None


def not_finite(value: Any) -> bool:
    """NaN or infinity, as a float or as text Python reads as one ("nan", "-Infinity")."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


def argument_shape_errors(spec: Dict[str, Any], params: Any, path: str = "") -> list:
    """Values whose shape ansible-core's validator cannot take (it raises instead of failing): a scalar where a
    dict with suboptions goes, a non-dict element of a list of such dicts, NaN or infinity where a whole number
    goes; and required options given as null
    (ansible-core counts a null as present). Only option names and kinds are quoted, never values."""
    errors: list = []
    if not isinstance(params, dict):
        return errors
    for name, option in spec.items():
        keys = [key for key in [name] + list(option.get("aliases") or []) if key in params]
        label = path + name
        value = params[keys[0]] if keys else None
        if keys and value is None and option.get("required"):
            errors.append("%s is required and must not be null." % label)
        if "int" in (option.get("type"), option.get("elements")) and any(
                not_finite(item) for item in (value if isinstance(value, list) else [value])):
            errors.append("%s must be a finite whole number." % label)  # ansible-core raises OverflowError on inf
        if value is None or not option.get("options"):
            continue
        if option.get("type", "str") == "dict":
            parsed = _as_dict(value)
            if parsed is None:
                errors.append("%s must be a dictionary, not %s." % (label, type(value).__name__))
            else:
                errors.extend(argument_shape_errors(option["options"], parsed, label + "."))
        elif option.get("type") == "list" and option.get("elements") == "dict":
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                parsed = _as_dict(item)
                if parsed is None:
                    errors.append("%s[%d] must be a dictionary, not %s." % (label, index, type(item).__name__))
                else:
                    errors.extend(argument_shape_errors(option["options"], parsed, "%s[%d]." % (label, index)))
    return errors


# ---------------------------------------------------------------------------------------------
# results: SDK models and REST dicts -> snake_case dicts

# Maps whose keys are the user's, not Azure's: returned exactly as stored.
VERBATIM_KEYS = frozenset(("tags", "settings"))
# Maps keyed by resource id whose values are ordinary ARM objects: keys kept, values converted.
ID_KEYED_MAPS = frozenset(("user_assigned_identities",))
# Never returned, at any depth (ARM does not send them back; strip in case a response does).
SECRET_KEYS = frozenset(("admin_password", "protected_settings", "custom_data"))

# The keys of an ARM resource envelope: a property of the same name is renamed when flattened
# (whether or not the envelope key is present, so the result's shape does not depend on it).
ENVELOPE_KEYS = frozenset(("id", "name", "type", "location", "tags", "etag", "zones", "sku", "identity",
                           "plan", "kind", "extended_location", "system_data", "managed_by"))


def snake(obj: Any) -> Any:
    """SDK model, REST dict or list of them -> plain snake_case structure.

    ARM ``properties`` envelopes are flattened into their parent, as the SDK's attributes are; a
    property named like an envelope key becomes ``<name>_properties_<name>`` (an extension's
    ``type``, next to the resource ``type``), as ``az`` shows ``typePropertiesType``.
    """
    if hasattr(obj, "as_dict") and callable(obj.as_dict):
        obj = obj.as_dict()
    if isinstance(obj, (list, tuple)):
        return [snake(item) for item in obj]
    if not isinstance(obj, dict):
        return obj
    result: Dict[str, Any] = {}
    envelope = obj.get("properties") if isinstance(obj.get("properties"), dict) else None
    for key, value in obj.items():
        if envelope is not None and key == "properties":
            continue
        result[to_snake(key)] = _snake_value(to_snake(key), value)
    for key, value in (envelope or {}).items():
        name = to_snake(key)
        flat = "%s_properties_%s" % (name, name) if name in ENVELOPE_KEYS or name in result else name
        result[flat] = _snake_value(name, value)
    return result


def _snake_value(name: str, value: Any) -> Any:
    if name in VERBATIM_KEYS:
        return value
    if name in ID_KEYED_MAPS and isinstance(value, dict):
        return {key: snake(item) for key, item in value.items()}
    return snake(value)


def redact(obj: Any) -> Any:
    """Drop SECRET_KEYS at any depth of a snake_case structure."""
    if isinstance(obj, list):
        return [redact(item) for item in obj]
    if isinstance(obj, dict):
        return {key: redact(value) for key, value in obj.items() if key not in SECRET_KEYS}
    return obj


def resource_result(model: Any) -> Dict[str, Any]:
    """What a module returns for one ARM resource: snake_case, flattened, no secrets, with resource_group."""
    result = redact(snake(model))
    result.setdefault("resource_group", resource_group_of(result.get("id")))
    return result
