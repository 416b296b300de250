"""The official Azure OpenAPI (Swagger 2.0) contracts as the emulator's request validator.

The specs are read from ../shared/azure-specs (or $FLEETOPS_AZURE_SPECS), never copied into the
repo. SpecIndex lists the operations they define and validates request bodies the way ARM
resource providers do: a missing required property, a wrong JSON type, a closed-enum mismatch or
an out-of-range number is a 400 InvalidParameter naming the property; read-only and unknown
properties are ignored, because clients echo back what they read.

Each body schema is compiled once into a tree of closures, so validating a request is a walk of
the body alone; errors are raised from the leaf and the property path is assembled on the way out.
"""
import json
import os
import re
import threading
from collections import namedtuple

from emulator.arm import ArmError

# The swagger files whose operations the emulator serves (see SOURCES.md in the spec root).
SPEC_FILES = (
    "specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/"
    "virtualMachineScaleSet.json",
    "specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/"
    "virtualMachine.json",
    "specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/"
    "computeRPCommon.json",
    "specification/compute/resource-manager/Microsoft.Compute/GalleryRP/stable/2024-03-03/"
    "gallery.json",
    "specification/imagebuilder/resource-manager/Microsoft.VirtualMachineImages/stable/"
    "2024-02-01/imagebuilder.json",
    "specification/monitor/resource-manager/Microsoft.Insights/stable/2022-10-01/"
    "autoscale_API.json",
    "specification/monitor/resource-manager/Microsoft.Insights/stable/2024-02-01/metrics_API.json",
    "specification/monitor/resource-manager/Microsoft.Insights/stable/2024-02-01/metricDefinitions_API.json",
)

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head")
INT32 = (-2 ** 31, 2 ** 31 - 1)

Operation = namedtuple("Operation", "method path_template operation_id spec_file api_version "
                                    "long_running lro_options")
Example = namedtuple("Example", "title file parameters body")
BodyParameter = namedtuple("BodyParameter", "name required file schema")


def default_spec_root():
    """$FLEETOPS_AZURE_SPECS, else the shared checkout next to the repository."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("FLEETOPS_AZURE_SPECS") or os.path.join(repo, "..", "shared",
                                                                    "azure-specs")


class SpecIndex:
    """Operations and body validators of SPEC_FILES; inert when the specs are not there.

    `available` says whether the specs were found; when False, `reason` says why (for the
    server's warning), validate_body() accepts everything and the lists are empty.
    """

    def __init__(self, root, documents=None, reason=None):
        self.root = root
        self.reason = reason
        self.available = reason is None
        self._docs = documents
        self._ops = []
        self._bodies = {}
        self._validators = {}
        self._lock = threading.Lock()
        if self.available:
            for spec_file in SPEC_FILES:
                self._index_operations(spec_file)
            self._compiler = _Compiler(documents)

    @classmethod
    def load(cls, spec_root=None):
        root = os.path.abspath(spec_root or default_spec_root())
        missing = [f for f in SPEC_FILES if not os.path.isfile(os.path.join(root, f))]
        if missing:
            return cls(root, reason=f"Azure specs not found: {os.path.join(root, missing[0])}")
        return cls(root, _Documents(root, SPEC_FILES))

    # --- operations ------------------------------------------------------------------------------

    def _index_operations(self, spec_file):
        doc = self._docs.get(spec_file)
        api_version = doc["info"]["version"]
        for template, item in doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                op_id = op["operationId"]
                self._ops.append(Operation(
                    method.upper(), template, op_id, spec_file, api_version,
                    bool(op.get("x-ms-long-running-operation")),
                    dict(op.get("x-ms-long-running-operation-options", {}))))
                body = self._body_parameter(spec_file, shared + op.get("parameters", []))
                if body is not None:  # operationIds repeat across providers only without bodies
                    self._bodies[op_id] = body

    def _body_parameter(self, spec_file, parameters):
        for parameter in parameters:
            file, param = spec_file, parameter
            if "$ref" in param:
                file, param = self._docs.resolve(spec_file, param["$ref"])
            if param.get("in") == "body":
                return BodyParameter(param["name"], bool(param.get("required")), file,
                                     param["schema"])
        return None

    def operations(self):
        """[(method, path_template, operation_id, spec_file, api_version, long_running,
        lro_options)] for every operation of SPEC_FILES (spec_file relative to the root).

        operationIds are unique within a provider only: Operations_List appears once per
        provider namespace.
        """
        return list(self._ops)

    def operation(self, operation_id):
        """The first operation with this id (None when the specs do not define it)."""
        if not operation_id:
            return None
        return next((op for op in self._ops if op.operation_id == operation_id), None)

    # --- validation ------------------------------------------------------------------------------

    def validate_body(self, operation_id, body):
        """Raise ArmError 400 InvalidParameter when body breaks the operation's contract.

        Operations the specs do not define, and operations without a body parameter, accept
        any body.
        """
        parameter = self._bodies.get(operation_id)
        if parameter is None:
            return
        if body is None:
            if parameter.required:
                raise ArmError(400, "InvalidParameter",
                               f"Required parameter '{parameter.name}' is missing (null).",
                               target=parameter.name)
            return
        try:
            self._validator(operation_id, parameter)(body)
        except _Invalid as invalid:
            path = invalid.path_text() or parameter.name
            raise ArmError(400, "InvalidParameter", invalid.message(path), target=path) from None

    def _validator(self, operation_id, parameter):
        check = self._validators.get(operation_id)
        if check is None:
            with self._lock:  # compilation fills shared caches; requests arrive on many threads
                check = (self._validators.get(operation_id)
                         or self._compiler.compile(parameter.file, parameter.schema))
                self._validators[operation_id] = check
        return check

    # --- examples --------------------------------------------------------------------------------

    def examples(self, operation_id):
        """[Example(title, file, parameters, body)] of the operation's x-ms-examples present
        under the root; body is the example's value for the body parameter (or None)."""
        parameter = self._bodies.get(operation_id)
        found = []
        for op in self._ops:
            if op.operation_id != operation_id:
                continue
            raw = self._docs.get(op.spec_file)["paths"][op.path_template][op.method.lower()]
            for title, ref in raw.get("x-ms-examples", {}).items():
                file = os.path.normpath(os.path.join(os.path.dirname(op.spec_file), ref["$ref"]))
                full = os.path.join(self.root, file)
                if not os.path.isfile(full):
                    continue
                with open(full, encoding="utf-8-sig") as f:
                    parameters = json.load(f)["parameters"]
                body = parameters.get(parameter.name) if parameter else None
                found.append(Example(title, file, parameters, body))
        return found


class _Documents:
    """The swagger files, loaded with every file they reference, and $ref resolution."""

    def __init__(self, root, spec_files):
        self._docs = {}
        pending = list(spec_files)
        while pending:
            name = pending.pop()
            if name in self._docs:
                continue
            with open(os.path.join(root, name), encoding="utf-8-sig") as f:
                self._docs[name] = json.load(f)
            pending.extend(self._referenced_files(name, self._docs[name]))

    def _referenced_files(self, name, node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                    yield self.target_file(name, value)
                elif key != "x-ms-examples":
                    yield from self._referenced_files(name, value)
        elif isinstance(node, list):
            for value in node:
                yield from self._referenced_files(name, value)

    def names(self):
        return list(self._docs)

    def get(self, name):
        return self._docs[name]

    @staticmethod
    def target_file(name, ref):
        file_part = ref.partition("#")[0]
        if not file_part:
            return name
        return os.path.normpath(os.path.join(os.path.dirname(name), file_part))

    def resolve(self, name, ref):
        """(file, node) that `ref`, written in file `name`, points at."""
        file = self.target_file(name, ref)
        node = self._docs[file]
        for token in ref.partition("#")[2].strip("/").split("/"):
            if token:
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return file, node

    def key(self, name, ref):
        """A canonical name for a $ref target: 'file#/definitions/X'."""
        return f"{self.target_file(name, ref)}#{ref.partition('#')[2]}"


class _Invalid(Exception):
    """A validation failure; `path` collects property names and indexes leaf-first."""

    def __init__(self, reason=None, missing=None):
        super().__init__(reason)
        self.reason = reason
        self.path = [missing] if missing is not None else []
        self.missing = missing is not None

    def path_text(self):
        text = ""
        for segment in reversed(self.path):
            if isinstance(segment, int):
                text += f"[{segment}]"
            else:
                text += f".{segment}" if text else segment
        return text

    def message(self, path):
        if self.missing:
            return f"Required parameter '{path}' is missing (null)."
        return f"The value of parameter {path} is invalid. {self.reason}"


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
               float: "number"}


def _type_error(expected, value):
    got = _JSON_TYPES.get(type(value), type(value).__name__)
    return _Invalid(f"Expected a value of type {expected} but got {got}.")


def _accept(value):
    """The validator of a schema that constrains nothing."""


class _Compiler:
    """Turns schemas into validators `check(value)` that raise _Invalid."""

    def __init__(self, docs):
        self._docs = docs
        self._by_ref = {}
        self._subtypes = self._index_subtypes()

    def _index_subtypes(self):
        """{base key: [(discriminator value, file, definition)]}, transitively over allOf."""
        parents = {}
        for name in self._docs.names():
            for def_name, schema in self._docs.get(name).get("definitions", {}).items():
                key = f"{name}#/definitions/{def_name}"
                parents[key] = [self._docs.key(name, part["$ref"])
                                for part in schema.get("allOf", []) if "$ref" in part]
        subtypes = {}
        for key, direct in parents.items():
            name, _, pointer = key.partition("#")
            schema = self._docs.get(name)["definitions"][pointer.rsplit("/", 1)[1]]
            value = schema.get("x-ms-discriminator-value", pointer.rsplit("/", 1)[1])
            ancestors, stack = set(), list(direct)
            while stack:
                parent = stack.pop()
                if parent not in ancestors:
                    ancestors.add(parent)
                    stack.extend(parents.get(parent, []))
            for ancestor in ancestors:
                subtypes.setdefault(ancestor, []).append((value, name, schema))
        return subtypes

    def compile(self, file, schema):
        if "$ref" in schema:
            return self._compile_ref(file, schema["$ref"])
        return self._compile_schema(file, schema)

    def _compile_ref(self, file, ref):
        """Named definitions are compiled once; a forwarding stub breaks recursive cycles."""
        key = self._docs.key(file, ref)
        if key in self._by_ref:
            return self._by_ref[key]
        cell = []
        self._by_ref[key] = lambda value: cell[0](value)
        target_file, target = self._docs.resolve(file, ref)
        if "discriminator" in target:
            check = self._compile_polymorphic(key, target_file, target)
        else:
            check = self.compile(target_file, target)
        cell.append(check)
        self._by_ref[key] = check
        return check

    def _compile_polymorphic(self, key, file, base):
        """A base type stands for any of its subtypes, chosen by the discriminator property."""
        prop = base["discriminator"]
        base_check = self._compile_schema(file, base)
        by_value = {value.lower(): self._compile_schema(sub_file, sub)
                    for value, sub_file, sub in self._subtypes.get(key, [])}
        allowed = ", ".join(value for value, _, _ in self._subtypes.get(key, []))

        def check(value):
            kind = value.get(prop) if type(value) is dict else None
            if type(kind) is not str:
                return base_check(value)
            sub_check = by_value.get(kind.lower())
            if sub_check is None:
                error = _Invalid(f"Allowed values: {allowed}.")
                error.path.append(prop)
                raise error
            return sub_check(value)
        return check

    def _compile_schema(self, file, schema):
        kind = schema.get("type")
        if kind == "object" or (kind is None and any(
                k in schema for k in ("properties", "allOf", "additionalProperties"))):
            return self._compile_object(file, schema)
        if kind == "array":
            return self._compile_array(file, schema)
        if kind == "string":
            return self._compile_string(schema)
        if kind in ("integer", "number"):
            return self._compile_number(schema)
        if kind == "boolean":
            return _typed(bool, "boolean")
        if "enum" in schema:
            return self._compile_enum(schema, _accept)
        return _accept

    # --- objects ---------------------------------------------------------------------------------

    def _object_parts(self, file, schema, parts):
        """Merge properties, required names and additionalProperties through allOf."""
        for member in schema.get("allOf", []):
            member_file = file
            if "$ref" in member:
                member_file, member = self._docs.resolve(file, member["$ref"])
            self._object_parts(member_file, member, parts)
        for name, prop in schema.get("properties", {}).items():
            parts["properties"][name] = (file, prop)
        parts["required"].update(schema.get("required", []))
        if isinstance(schema.get("additionalProperties"), dict):
            parts["additional"] = (file, schema["additionalProperties"])
        return parts

    def _is_read_only(self, file, prop):
        if "$ref" in prop and "readOnly" not in prop:
            file, prop = self._docs.resolve(file, prop["$ref"])
        mutability = prop.get("x-ms-mutability")
        return bool(prop.get("readOnly")) or (
            mutability is not None and "create" not in mutability and "update" not in mutability)

    def _compile_object(self, file, schema):
        parts = self._object_parts(file, schema, {"properties": {}, "required": set(),
                                                  "additional": None})
        read_only = {name for name, (f, prop) in parts["properties"].items()
                     if self._is_read_only(f, prop)}
        properties = {name: self.compile(f, prop)
                      for name, (f, prop) in parts["properties"].items() if name not in read_only}
        required = sorted(parts["required"] - read_only)
        additional = parts["additional"] and self.compile(*parts["additional"])
        declared = set(parts["properties"])

        def check(value):
            if type(value) is not dict:
                raise _type_error("object", value)
            for name in required:
                if value.get(name) is None:
                    raise _Invalid(missing=name)
            for name, item in value.items():
                if item is None:
                    continue
                sub_check = properties.get(name)
                if sub_check is None:
                    if additional is None or name in declared:
                        continue  # read-only or unknown: ARM ignores it
                    sub_check = additional
                try:
                    sub_check(item)
                except _Invalid as error:
                    error.path.append(name)
                    raise
        return check

    # --- arrays ----------------------------------------------------------------------------------

    def _compile_array(self, file, schema):
        items = self.compile(file, schema["items"]) if "items" in schema else _accept
        min_items, max_items = schema.get("minItems"), schema.get("maxItems")

        def check(value):
            if type(value) is not list:
                raise _type_error("array", value)
            if min_items is not None and len(value) < min_items:
                raise _Invalid(f"The list must have at least {min_items} items.")
            if max_items is not None and len(value) > max_items:
                raise _Invalid(f"The list must have at most {max_items} items.")
            if items is _accept:
                return
            for index, item in enumerate(value):
                if item is None:
                    continue
                try:
                    items(item)
                except _Invalid as error:
                    error.path.append(index)
                    raise
        return check

    # --- scalars ---------------------------------------------------------------------------------

    def _compile_enum(self, schema, inner):
        """Closed enums only: x-ms-enum modelAsString (the usual case) admits any value."""
        if schema.get("x-ms-enum", {}).get("modelAsString") or "enum" not in schema:
            return inner
        allowed = {v.lower() if isinstance(v, str) else v for v in schema["enum"]}
        listed = ", ".join(str(v) for v in schema["enum"])

        def check(value):
            inner(value)
            if (value.lower() if isinstance(value, str) else value) not in allowed:
                raise _Invalid(f"Allowed values: {listed}.")
        return check

    def _compile_string(self, schema):
        min_length, max_length = schema.get("minLength"), schema.get("maxLength")
        pattern = re.compile(schema["pattern"]) if "pattern" in schema else None

        def check(value):
            if type(value) is not str:
                raise _type_error("string", value)
            if min_length is not None and len(value) < min_length:
                raise _Invalid(f"The value must be at least {min_length} characters long.")
            if max_length is not None and len(value) > max_length:
                raise _Invalid(f"The value must be at most {max_length} characters long.")
            if pattern is not None and not pattern.search(value):
                raise _Invalid(f"The value must match the pattern '{pattern.pattern}'.")
        return self._compile_enum(schema, check)

    def _compile_number(self, schema):
        integer = schema["type"] == "integer"
        accepted = (int,) if integer else (int, float)
        name = schema["type"]
        low, high = schema.get("minimum"), schema.get("maximum")
        if integer and schema.get("format") == "int32":
            low = INT32[0] if low is None else max(low, INT32[0])
            high = INT32[1] if high is None else min(high, INT32[1])

        def check(value):
            if type(value) not in accepted:  # bool is not an int here
                raise _type_error(name, value)
            if low is not None and value < low:
                raise _Invalid(f"The value {value} is less than the minimum {low}.")
            if high is not None and value > high:
                raise _Invalid(f"The value {value} is greater than the maximum {high}.")
        return self._compile_enum(schema, check)


def _typed(python_type, name):
    def check(value):
        if type(value) is not python_type:
            raise _type_error(name, value)
    return check
