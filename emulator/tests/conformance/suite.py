"""Conformance suite: replay recorded real-Azure traffic against the emulator and compare the answers.

The corpus (corpus/*.json, see SOURCES.md) holds scrubbed interactions derived from public recordings.
Each file is replayed in order against one emulator; recorded LRO URLs are replaced, by order, with the
URLs the emulator itself returned, and polls run until the state the recording reached. Each kept
interaction is compared on status, body keys (recursively), enum-like values, LRO headers and
throttling policy names. `KNOWN.json` lists the mismatches that are accepted (or still pending), with why.
"""
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
KNOWN = os.path.join(HERE, "KNOWN.json")
PLACEHOLDER_SUB = "00000000-0000-0000-0000-000000000000"
AZURE = "https://management.azure.com"
TERMINAL = {"succeeded", "failed", "canceled", "cancelled"}
POLL_DEADLINE = 30.0

# Values compared exactly wherever these keys occur (enum-like: states, codes, types, regions, modes).
ENUM_KEYS = {"provisioningState", "status", "runState", "runSubState", "code", "type", "location", "mode",
             "lastAction", "level", "osType", "hyperVGeneration", "modelDefinitionApplied", "latestModelApplied",
             "displayStatus", "storageAccountType", "createOption", "caching", "replicationStatus", "state"}
# Free-form maps: their keys are user data, not schema.
OPAQUE_KEYS = {"tags", "settings", "protectedSettings", "userAssignedIdentities", "output"}
LRO_HEADERS = ("azure-asyncoperation", "location", "retry-after")
RATELIMIT = "x-ms-ratelimit-remaining-resource"
CATEGORIES = ("generations", "flexible", "health", "throttling", "lro", "gallery", "imagebuilder", "shapes", "other")


# ---------------------------------------------------------------- corpus

def load_corpus(directory=CORPUS):
    files = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as fh:
                files.append(json.load(fh))
    return files


def counted(interaction):
    return not interaction.get("setup")


def resource_groups(corpus_file):
    """Names of the resource groups a corpus file's URLs name."""
    names = set()
    for interaction in corpus_file["interactions"]:
        match = re.search(r"/resourceGroups/([^/?]+)", interaction.get("url", ""), re.I)
        if match:
            names.add(match.group(1))
    return names


def own_items(body, groups):
    """A subscription-wide list answer cut to the items in `groups`: the recording's subscription held other
    tests' resources (cut when transcribed), the emulator's holds other corpus files' (cut here, the same way)."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return body
    wanted = {name.lower() for name in groups}   # ARM names are case-insensitive (Azure upper-cases some ids)

    def in_groups(item):
        match = re.search(r"/resourceGroups/([^/]+)/", str(item.get("id", "")), re.I)
        return bool(match) and match.group(1).lower() in wanted
    return dict(body, value=[item for item in body["value"] if isinstance(item, dict) and in_groups(item)])


# ---------------------------------------------------------------- comparer

def key_paths(doc, prefix=""):
    """Every key path of a JSON document; list items merge under `[]`; opaque maps stop the walk."""
    paths = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            if key not in OPAQUE_KEYS:
                paths |= key_paths(value, path)
    elif isinstance(doc, list):
        for item in doc:
            paths |= key_paths(item, prefix + "[]")
    return paths


def enum_values(doc, prefix=""):
    """{path: sorted values} for the enum-like keys (scalars only)."""
    found = {}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                sub = f"{path}.{key}" if path else key
                enum_like = key in ENUM_KEYS or sub.endswith("targetRegions[].name")   # region display names
                if enum_like and isinstance(value, (str, bool, int)):
                    found.setdefault(sub, set()).add(json.dumps(value))
                if key not in OPAQUE_KEYS:
                    walk(value, sub)
        elif isinstance(node, list):
            for item in node:
                walk(item, path + "[]")

    walk(doc, prefix)
    return {path: sorted(values) for path, values in found.items()}


def policies(header_value):
    """Throttling policy names of `x-ms-ratelimit-remaining-resource` ("A;12,B;3" -> {"A", "B"})."""
    if not header_value:
        return set()
    return {part.split(";")[0].strip() for part in header_value.split(",") if part.strip()}


def compare(recorded, status, body, headers):
    """Mismatches of one interaction: [(kind, detail)] with deterministic details."""
    out = []
    if status != recorded["status"]:
        out.append(("status", f"Azure {recorded['status']}, emulator {status}"))
        if (status < 300) != (recorded["status"] < 300):   # success vs error: the bodies are not comparable
            code = (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
            return out + ([("error", f"emulator error code {code}")] if code else [])
    rec_body = recorded.get("body")
    if (rec_body is None) != (body is None):
        out.append(("body", "Azure " + ("empty" if rec_body is None else "a JSON body") + ", emulator "
                    + ("empty" if body is None else "a JSON body")))
    if rec_body is not None and body is not None:
        ours, theirs = key_paths(body), key_paths(rec_body)
        if theirs - ours:
            out.append(("keys_missing", ", ".join(sorted(theirs - ours))))
        if ours - theirs:
            out.append(("keys_extra", ", ".join(sorted(ours - theirs))))
        got_enums = enum_values(body)
        for path, values in sorted(enum_values(rec_body).items()):
            if path in got_enums and got_enums[path] != values:
                out.append(("enum", f"{path}: Azure {'|'.join(values)}, emulator {'|'.join(got_enums[path])}"))
    rec_headers = {k.lower(): v for k, v in recorded.get("headers", {}).items()}
    rec_lro = {h for h in LRO_HEADERS if h in rec_headers}
    got_lro = {h for h in LRO_HEADERS if h in headers}
    if rec_lro != got_lro:
        out.append(("lro_headers", f"Azure [{', '.join(sorted(rec_lro))}], emulator [{', '.join(sorted(got_lro))}]"))
    rec_pol, got_pol = policies(rec_headers.get(RATELIMIT)), policies(headers.get(RATELIMIT))
    if rec_pol != got_pol:
        out.append(("throttle", f"Azure [{', '.join(sorted(rec_pol))}], emulator [{', '.join(sorted(got_pol))}]"))
    return out


# ---------------------------------------------------------------- replayer

class Replayer:
    """Replays corpus files against a running emulator (an `Emu` from emulator/tests/conftest.py)."""

    def __init__(self, emu):
        self.emu = emu
        self.ssl = ssl.create_default_context(cafile=emu.env["REQUESTS_CA_BUNDLE"])
        self.throttled = 0

    # -- HTTP
    def send(self, method, url, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for _ in range(20):
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Authorization", f"Bearer {self.emu.token()}")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, context=self.ssl, timeout=60) as response:
                    status, payload, headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as err:
                status, payload, headers = err.code, err.read(), err.headers
            headers = {k.lower(): v for k, v in headers.items()}
            if status != 429:
                break
            # Azure's recordings were not throttled at this pace: wait as told, and count it.
            self.throttled += 1
            time.sleep(min(2.0, int(headers.get("retry-after-ms", "500")) / 1000))
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, parsed, headers

    # -- mapping recorded URLs and bodies onto the emulator
    def substitute(self, text):
        text = text.replace(PLACEHOLDER_SUB, self.emu.subscription_id)
        for placeholder, value in self.bound.items():
            text = text.replace(placeholder, value)
        return text

    def local_url(self, recorded_url):
        path = recorded_url[len(AZURE):] if recorded_url.startswith(AZURE) else recorded_url
        return self.emu.url + self.substitute(path)

    def local_body(self, body):
        return None if body is None else json.loads(self.substitute(json.dumps(body)))

    def bind(self, corpus_file, interaction_id, answer_body):
        """Placeholders that stand for values the service generates take the emulator's values."""
        for placeholder, source in corpus_file.get("bind", {}).items():
            if source["from"] == interaction_id:
                value = answer_body
                for key in source["path"].split("."):
                    value = value.get(key) if isinstance(value, dict) else None
                if isinstance(value, str):
                    self.bound[placeholder] = value

    def map_instances(self, spec, url, body):
        """Recorded instance ids -> the emulator's (Azure's overprovisioning makes ids unpredictable)."""
        names_instances = re.search(r"/virtualmachines/", url, re.I) or (
            isinstance(body, dict) and "instanceIds" in body)
        if not spec or not names_instances:
            return url, body
        if self._instance_ids is None:   # resolved once the set exists: at the first call that names an instance
            status, listing, _ = self.send("GET", self.local_url(spec["scale_set"] + "/virtualMachines?api-version=2024-07-01"))
            ids = [vm["instanceId"] for vm in (listing or {}).get("value", [])] if status == 200 else []
            absent = str(max([int(i) for i in ids if i.isdigit()] or [0]) + 1000)
            self._instance_ids = {rec: (ids[idx] if idx is not None and idx < len(ids) else absent)
                                  for rec, idx in spec["map"].items()}
        mapping = self._instance_ids

        def swap(match):
            return match.group(1) + mapping.get(match.group(2), match.group(2))
        url = re.sub(r"(/virtualmachines/)([^/?]+)", swap, url, flags=re.I)
        if isinstance(body, dict) and isinstance(body.get("instanceIds"), list):
            body = dict(body, instanceIds=[mapping.get(i, i) for i in body["instanceIds"]])
        return url, body

    # -- LRO polling
    def poll(self, interaction, origin_headers):
        url = origin_headers.get(interaction["via"])
        if not url:
            return None, f"the emulator gave no {interaction['via']} header to poll"
        deadline = time.monotonic() + POLL_DEADLINE
        while True:
            status, body, headers = self.send("GET", url)
            if interaction["until"] != "terminal":
                if interaction.get("settle"):   # the recording went on to a terminal state: wait for it too
                    self.poll(dict(interaction, until="terminal", settle=False), origin_headers)
                return (status, body, headers), None
            if interaction["via"] == "location":
                done = status != 202
            else:
                done = status != 200 or str((body or {}).get("status", "")).lower() in TERMINAL
            if done:
                return (status, body, headers), None
            if time.monotonic() > deadline:
                return (status, body, headers), f"not terminal after {POLL_DEADLINE:.0f}s"
            time.sleep(0.05)

    # -- one file
    def ensure_resource_groups(self, corpus_file):
        location = "eastus"
        for interaction in corpus_file["interactions"]:
            if isinstance(interaction.get("request"), dict) and interaction["request"].get("location"):
                location = interaction["request"]["location"]
                break
        for name in sorted(resource_groups(corpus_file)):
            status, body, _ = self.send("PUT", self.local_url(
                f"/subscriptions/{PLACEHOLDER_SUB}/resourcegroups/{name}?api-version=2021-04-01"), {"location": location})
            if status not in (200, 201):
                raise RuntimeError(f"resource group {name}: {status} {body}")

    def replay_file(self, corpus_file):
        """[(interaction, [(kind, detail)])] for every interaction of one corpus file, in order."""
        self._instance_ids = None
        self.bound = {}
        self.ensure_resource_groups(corpus_file)
        answers, results = {}, []
        for interaction in corpus_file["interactions"]:
            throttled_before = self.throttled
            if interaction["op"] == "poll":
                origin = answers.get(interaction["lro"])
                got, error = self.poll(interaction, origin[2] if origin else {})
            else:
                url, body = self.map_instances(corpus_file.get("instances"), interaction["url"],
                                               interaction.get("request"))
                got, error = self.send(interaction["method"], self.local_url(url), self.local_body(body)), None
                answers[interaction["id"]] = got
                if interaction.get("own_items"):
                    got = (got[0], own_items(got[1], resource_groups(corpus_file)), got[2])
                self.bind(corpus_file, interaction["id"], got[1])
            mismatches = [("replay", error)] if error else []
            if not counted(interaction):   # setup (network, or our own synthetic call): it only has to succeed
                if got is not None and got[0] >= 400:
                    mismatches.append(("replay", f"setup failed: {got[0]} {json.dumps(got[1])[:300]}"))
            elif got is not None:
                mismatches += compare(interaction, *got)
            if self.throttled > throttled_before:   # Azure did not throttle the recording at this pace
                mismatches.append(("throttled", "the emulator answered 429 before this call went through"))
            results.append((interaction, mismatches))
        return results


# ---------------------------------------------------------------- running and reporting

def run(emu, corpus=None):
    """Replay the whole corpus; returns a list of rows: {id, op, counted, mismatches}."""
    replayer = Replayer(emu)
    rows = []
    for corpus_file in corpus or load_corpus():
        for interaction, mismatches in replayer.replay_file(corpus_file):
            rows.append({"id": f"{corpus_file['source']}#{interaction['id']}", "op": interaction["op"],
                         "url": interaction.get("url", ""), "counted": counted(interaction),
                         "mismatches": mismatches})
    return rows, replayer.throttled


def summary(rows):
    counted_rows = [row for row in rows if row["counted"]]
    strict = sum(1 for row in counted_rows if not row["mismatches"])
    lenient = sum(1 for row in counted_rows
                  if all(kind == "keys_missing" for kind, _ in row["mismatches"]))
    total = len(counted_rows)
    return (f"{strict}/{total} match (strict); "
            f"{lenient}/{total} match ignoring keys the emulator leaves out")


def table(rows):
    lines = []
    for row in rows:
        mark = "ok  " if not row["mismatches"] else "DIFF"
        tag = "" if row["counted"] else " (setup)"
        lines.append(f"{mark} {row['id']:<40} {row['op']}{tag}")
        for kind, detail in row["mismatches"]:
            lines.append(f"       {kind:<13} {detail}")
    return "\n".join(lines)


def category(row, kind, detail):
    """A first guess at which part of issue 14 a mismatch belongs to (for pending entries)."""
    url = row["url"].lower()
    if "latestmodelapplied" in detail.lower():
        return "generations"
    if "flex" in row["id"].lower():
        return "flexible"
    if "/galleries/" in url:
        return "gallery"
    if "imagetemplates" in url:
        return "imagebuilder"
    if kind == "throttle":
        return "throttling"
    if "runningStatus.code" in detail:   # the emulator's upgrade finished sooner than Azure's, scaled
        return "other"
    if kind in ("lro_headers", "replay") or row["op"] == "poll":
        return "lro"
    if re.search(r"(?<!un)health", detail, re.I):   # not rollingUpgradePolicy.maxUnhealthy...
        return "health"
    if kind in ("keys_missing", "keys_extra", "enum", "body"):
        return "shapes"
    return "other"


THROTTLE_ERA_NOTE = (
    "Compute's bucket names differ by era: <Policy>3Min/<Policy>30Min in 2020-22 recordings (and for galleries "
    "still in November 2025), <Policy>Resource/<Policy>SubscriptionMaximum for scale-set calls in April 2024 "
    "(cli_monitor_autoscale_basic#01). The emulator sends the windowed names GUIDE.md records; the collection "
    "parses any bucket name.")


def default_note(rid, kind, detail):
    """Context for a new allow-list entry that a reader needs to judge it (None when the detail says it all)."""
    if kind == "throttle" and detail.endswith("emulator []"):
        return "The emulator sends no x-ms-ratelimit-remaining-resource on this call."
    if kind == "throttle" and rid.startswith("sdkpy_"):
        return THROTTLE_ERA_NOTE
    return None


def load_known(path=KNOWN):
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


def known_entries(known):
    return [entry for group in CATEGORIES for entry in known.get(group, [])]


def occurring(rows):
    return {(row["id"], kind, detail): row for row in rows for kind, detail in row["mismatches"]}


def check_known(rows, known):
    """(unlisted mismatches, allow-listed entries that no longer occur)."""
    seen = occurring(rows)
    listed = {(entry["id"], entry["kind"], entry["detail"]) for entry in known_entries(known)}
    unlisted = sorted(key for key in seen if key not in listed)
    stale = sorted(key for key in listed if key not in seen)
    return unlisted, stale


def write_known(rows, known, path=KNOWN):
    """Rewrite the allow-list from the current mismatches: keep existing reasons, mark new ones pending."""
    reasons = {(e["id"], e["kind"], e["detail"]): e for e in known_entries(known)}
    grouped = {group: [] for group in CATEGORIES}
    for (rid, kind, detail), row in sorted(occurring(rows).items()):
        entry = reasons.get((rid, kind, detail))
        if entry is None:
            group = category(row, kind, detail)
            entry = {"id": rid, "kind": kind, "detail": detail, "category": group, "reason": f"pending: {group}"}
            if default_note(rid, kind, detail):
                entry["note"] = default_note(rid, kind, detail)
        grouped[entry["category"]].append(entry)
    with open(path, "w") as fh:
        json.dump(grouped, fh, indent=1)
        fh.write("\n")
    return grouped


def start_emulator(state_dir, time_scale=0.01):
    """An emulator with throttling on (the default) and a small time scale, as the conftest `Emu`."""
    from emulator import main as runtime
    from emulator.tests.conftest import Emu
    env = runtime.start_background(str(state_dir), ["--time-scale", str(time_scale)])
    return Emu(str(state_dir), env)


def stop_emulator(emu):
    from emulator import main as runtime
    runtime.stop(emu.state_dir)


# ---------------------------------------------------------------- coverage

# The operations the collection calls (plugins/: SDK calls and raw REST), by OpenAPI operation id.
COLLECTION_OPERATIONS = (
    "VirtualMachineScaleSets_Get", "VirtualMachineScaleSets_CreateOrUpdate", "VirtualMachineScaleSets_Update",
    "VirtualMachineScaleSets_Delete", "VirtualMachineScaleSets_List", "VirtualMachineScaleSets_ListAll",
    "VirtualMachineScaleSets_GetInstanceView", "VirtualMachineScaleSets_GetOSUpgradeHistory",
    "VirtualMachineScaleSets_UpdateInstances", "VirtualMachineScaleSets_Reimage", "VirtualMachineScaleSets_Restart",
    "VirtualMachineScaleSets_Deallocate", "VirtualMachineScaleSets_PowerOff",
    "VirtualMachineScaleSets_DeleteInstances",
    "VirtualMachineScaleSetRollingUpgrades_GetLatest", "VirtualMachineScaleSetRollingUpgrades_Cancel",
    "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade", "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade",
    "VirtualMachineScaleSetVMs_List", "VirtualMachineScaleSetVMs_Get", "VirtualMachineScaleSetVMs_Update",
    "VirtualMachines_List", "VirtualMachines_Get",
    "Galleries_Get", "Galleries_CreateOrUpdate", "Galleries_Delete",
    "GalleryImages_Get", "GalleryImages_CreateOrUpdate", "GalleryImages_Delete",
    "GalleryImageVersions_Get", "GalleryImageVersions_CreateOrUpdate", "GalleryImageVersions_Update",
    "GalleryImageVersions_Delete",
    "VirtualMachineImageTemplates_CreateOrUpdate", "VirtualMachineImageTemplates_Get",
    "VirtualMachineImageTemplates_Run", "VirtualMachineImageTemplates_Cancel", "VirtualMachineImageTemplates_Delete",
    "AutoscaleSettings_CreateOrUpdate", "AutoscaleSettings_Get", "AutoscaleSettings_Delete",
    "AutoscaleSettings_ListBySubscription",
    "UserAssignedIdentities_CreateOrUpdate", "UserAssignedIdentities_Get",
    "RoleAssignments_Create", "RoleAssignments_ListForScope", "RoleAssignments_Delete",
    "poll:azure-asyncoperation", "poll:location",
)
# Not in the corpus: no public recording of them was found (why, per entry). Remove an entry when one is added.
UNCOVERED = (
    # Flexible instances: no public recording found that lists (virtualMachineScaleSet/id filter) or gets the VMs
    # of a Flexible set grown by its own capacity (recordings are found by name and sampled, not searched in
    # full). Replaying one would also need a mapping from recorded VM names to the names the emulator gives.
    "VirtualMachines_List", "VirtualMachines_Get",
    # The CLI's `monitor autoscale list` requires -g; the PowerShell autoscale test reads one setting by name.
    "AutoscaleSettings_ListBySubscription",
)


def covered(corpus=None):
    """Operation ids (and poll kinds) the counted interactions of the corpus exercise."""
    ops = set()
    for corpus_file in corpus or load_corpus():
        for interaction in corpus_file["interactions"]:
            if counted(interaction):
                ops.add(f"poll:{interaction['via']}" if interaction["op"] == "poll" else interaction["op"])
    return ops
