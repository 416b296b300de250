# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/fleetops-operator-role.json holds exactly the Azure RBAC actions the workflows need, as the emulator
maps requests to actions (each route's ``action``), and docs/permissions.md lists them per workflow.

What each workflow calls is written down below, module by module, from the modules' code (and checked against
the emulator's traffic of the workflows' integration tests). It cannot be derived from the code mechanically:
modules hold SDK operation groups in variables, dispatch with getattr and send a few raw REST requests. So
this test checks the role against that inventory and against the emulator; that the workflows really run with
the role and nothing more is tests/integration/test_least_privilege.py, which runs the playbooks as a principal
holding only it (and the requests seen there are all in this inventory).
What this test does catch: a role that starts to use another module (see WORKFLOW_MODULES), an operation
the emulator does not know, an action missing from the role or surplus in it, and docs out of step.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the emulator package: its route table is the action mapping

from emulator import providers  # noqa: E402  pylint: disable=wrong-import-position
from emulator.identity import action_allowed  # noqa: E402  pylint: disable=wrong-import-position
from emulator.server import ROUTES, derive_action, find_route  # noqa: E402  pylint: disable=wrong-import-position

providers.load_all()

# Requests made by path, not by an SDK operation ID: operation status polls and raw REST reads.
LOCATIONS = ("GET", "/subscriptions/{subscriptionId}/locations")  # location_info (Subscriptions - List Locations)
POLL_COMPUTE = ("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
                       "/operations/{operationId}")
RESULT_COMPUTE = ("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
                         "/operationResults/{operationId}")  # the Location header of Update Instances
POLL_GALLERY = ("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}"
                       "/capsOperations/{operationId}")
POLL_IMAGE_BUILDER = ("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.VirtualMachineImages/locations/"
                             "{location}/operations/{operationId}")

# The modules each role calls (a role that starts to call another one fails test_workflow_modules).
WORKFLOW_MODULES = {
    "bake": {"location_info", "gallery", "gallery_image", "gallery_image_info", "gallery_image_version",
             "gallery_image_version_info", "image_template", "image_build", "user_assigned_identity",
             "role_assignment"},
    "rollout": {"rollout", "rolling_upgrade", "blue_green", "scale_set", "scale_set_info", "scale_set_instance_info",
                "autoscale", "autoscale_info", "gallery_image_version", "gallery_image_version_info"},
    "scale": {"scale_set", "scale_set_info", "scale_set_instance", "scale_set_instance_info", "autoscale",
              "autoscale_info"},
    "app_update": {"scale_set_instance", "scale_set_instance_info"},
}

# What those modules send, as the workflows use them: emulator operation IDs or (method, path template).
WORKFLOW_OPERATIONS = {
    "bake": [
        LOCATIONS, "ResourceGroups_Get",
        "Galleries_Get", "Galleries_CreateOrUpdate", "Galleries_Update",
        "GalleryImages_Get", "GalleryImages_ListByGallery", "GalleryImages_CreateOrUpdate", "GalleryImages_Update",
        "GalleryImageVersions_Get", "GalleryImageVersions_ListByGalleryImage", "GalleryImageVersions_Update",
        "GalleryImageVersions_Delete",                           # a failed canary: the half-published version goes
        "UserAssignedIdentities_Get", "UserAssignedIdentities_CreateOrUpdate", "UserAssignedIdentities_Update",
        "RoleDefinitions_List", "RoleAssignments_ListForResourceGroup", "RoleAssignments_Create",
        "VirtualMachineImageTemplates_Get", "VirtualMachineImageTemplates_CreateOrUpdate",
        "VirtualMachineImageTemplates_Delete", "VirtualMachineImageTemplates_Run",
        "VirtualMachineImageTemplates_ListRunOutputs",
        POLL_GALLERY, POLL_IMAGE_BUILDER,
    ],
    "rollout": [
        "VirtualMachineScaleSets_Get", "VirtualMachineScaleSets_Update", "VirtualMachineScaleSets_UpdateInstances",
        "VirtualMachineScaleSetVMs_List", "VirtualMachines_List",
        "VirtualMachineScaleSetRollingUpgrades_GetLatest", "VirtualMachineScaleSetRollingUpgrades_StartOSUpgrade",
        "VirtualMachineScaleSetRollingUpgrades_StartExtensionUpgrade", "VirtualMachineScaleSetRollingUpgrades_Cancel",
        "VirtualMachineScaleSets_ApproveRollingUpgrade",         # a deferred automatic OS upgrade, batch by batch
        # blue/green: a green set beside blue, blue deallocated and started again, then deleted
        "VirtualMachineScaleSets_CreateOrUpdate", "VirtualMachineScaleSets_Delete",
        "VirtualMachineScaleSets_Deallocate", "VirtualMachineScaleSets_Start",
        "VirtualMachines_Deallocate", "VirtualMachines_Start", "LoadBalancerBackendAddressPools_Get",
        "GalleryImageVersions_Get", "GalleryImageVersions_ListByGalleryImage", "GalleryImageVersions_Update",
        "AutoscaleSettings_ListBySubscription", "AutoscaleSettings_ListByResourceGroup", "AutoscaleSettings_Get",
        "AutoscaleSettings_CreateOrUpdate", "AutoscaleSettings_Update", "AutoscaleSettings_Delete",
        POLL_COMPUTE, RESULT_COMPUTE, POLL_GALLERY,
    ],
    "scale": [
        "VirtualMachineScaleSets_Get", "VirtualMachineScaleSets_Update",
        "VirtualMachineScaleSetVMs_List", "VirtualMachines_List", "VirtualMachineScaleSetVMs_Update",
        "VirtualMachineScaleSetVMs_Get",                         # an instance read back once protected
        "AutoscaleSettings_ListBySubscription", "AutoscaleSettings_ListByResourceGroup", "AutoscaleSettings_Get",
        "AutoscaleSettings_CreateOrUpdate", "AutoscaleSettings_Update",
        POLL_COMPUTE,
    ],
    "app_update": [
        "VirtualMachineScaleSets_Get", "VirtualMachineScaleSetVMs_List", "VirtualMachines_List",
        "VirtualMachineScaleSetVMs_Update", "VirtualMachineScaleSetVMs_Get",   # protect from scale-in, and back
        POLL_COMPUTE,
    ],
    "inventory": [
        "VirtualMachineScaleSets_ListAll", "VirtualMachineScaleSets_List", "VirtualMachineScaleSets_Get",
        "VirtualMachineScaleSetVMs_List", "VirtualMachines_List",
        "NetworkInterfaces_ListVirtualMachineScaleSetNetworkInterfaces", "NetworkInterfaces_List",
        # connect_via: nat
        "LoadBalancers_Get", "PublicIPAddresses_Get", "LoadBalancers_ListInboundNatRulePortMappings",
    ],
}

# Actions Azure checks that the emulator does not model: linked-access checks on resources a request refers to,
# and the status of Compute's operations (the emulator checks one action for every provider's status).
AZURE_ONLY = {
    "bake": ["Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"],   # the template's identity
    "rollout": ["Microsoft.Compute/locations/operations/read",
                "Microsoft.Features/providers/features/read",   # the preview-feature check (raw Features - Get)
                "Microsoft.Network/virtualNetworks/subnets/join/action",               # green's NICs
                "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
                "Microsoft.Network/loadBalancers/probes/join/action",
                "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action"],    # green's identity, if any
    "scale": ["Microsoft.Compute/locations/operations/read"],
    "app_update": ["Microsoft.Compute/locations/operations/read"],
    "inventory": [],
}

BY_OPERATION_ID = {route.operation_id: route for route in ROUTES if route.operation_id and not route.control}


def role():
    return json.loads((ROOT / "docs" / "fleetops-operator-role.json").read_text())


def action_of(operation):
    """The RBAC action the emulator checks for an operation ID or a (method, path template)."""
    if isinstance(operation, str):
        return BY_OPERATION_ID[operation].action
    method, template = operation
    route, _params = find_route(method, re.sub(r"{[^}]+}", "x", template))
    return route.action if route is not None else derive_action(method, template)


def needed(workflow):
    return sorted({action_of(operation) for operation in WORKFLOW_OPERATIONS[workflow]} | set(AZURE_ONLY[workflow]),
                  key=str.lower)


def test_every_operation_is_one_the_emulator_serves():
    unknown = [operation for operations in WORKFLOW_OPERATIONS.values() for operation in operations
               if isinstance(operation, str) and operation not in BY_OPERATION_ID]
    assert unknown == []
    routed = [operation for operations in WORKFLOW_OPERATIONS.values() for operation in operations
              if not isinstance(operation, str) and operation != LOCATIONS]
    assert all(find_route(method, re.sub(r"{[^}]+}", "x", path))[0] is not None for method, path in routed)


def test_workflow_modules_are_those_the_roles_call():
    # an action plugin's documentation stub (rollout_wait, report_files: run on the controller) sends nothing to Azure
    controller_only = {path.stem for path in (ROOT / "plugins" / "action").glob("*.py")}
    modules = {path.stem for path in (ROOT / "plugins" / "modules").glob("*.py")} - controller_only
    for workflow in ("bake", "rollout", "scale", "app_update"):
        text = "\n".join(path.read_text() for path in sorted((ROOT / "roles" / workflow / "tasks").glob("*.yml")))
        called = set(re.findall(r"^\s*fleetops\.vmss\.([a-z_]+):", text, re.M)) & modules
        assert called == WORKFLOW_MODULES[workflow], workflow


def test_role_allows_every_action_each_workflow_needs_and_nothing_else():
    definition = role()
    actions = definition["Actions"]
    assert definition["IsCustom"] is True and definition["NotActions"] == [] and definition["DataActions"] == []
    assert len(actions) == len({action.lower() for action in actions}) and "*" not in "".join(actions)
    everything = {action.lower() for workflow in WORKFLOW_OPERATIONS for action in needed(workflow)}
    for workflow in WORKFLOW_OPERATIONS:
        refused = [action for action in needed(workflow) if not action_allowed(actions, action)]
        assert refused == [], workflow
    assert sorted(action.lower() for action in actions) == sorted(everything)


def test_permissions_page_lists_each_workflow_s_actions():
    page = (ROOT / "docs" / "permissions.md").read_text()
    for workflow in WORKFLOW_OPERATIONS:
        block = re.search(r"^### %s\b.*?^```text\n(.*?)^```" % workflow, page, re.M | re.S)
        assert block, "docs/permissions.md has no ### %s section with a ```text block" % workflow
        assert sorted(block.group(1).split(), key=str.lower) == needed(workflow), workflow
    assert json.loads(re.search(r"^```json\n(.*?)^```", page, re.M | re.S).group(1)) == role()
