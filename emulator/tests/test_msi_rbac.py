"""User-assigned identities, role assignments and role definitions through azure-mgmt-msi and
azure-mgmt-authorization. The helpers at the top are reused by test_imagebuilder.py."""
import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from emulator.providers import identity_rbac

RG = "rbac-rg"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcf635"
VM_CONTRIBUTOR = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
AUTH_API = "2022-04-01"


# --- helpers (also used by test_imagebuilder.py) -------------------------------------------------

def msi_client(emu):
    from azure.mgmt.msi import ManagedServiceIdentityClient
    return ManagedServiceIdentityClient(**emu.sdk_kwargs())


def auth_client(emu, credential=None):
    from azure.mgmt.authorization import AuthorizationManagementClient
    return AuthorizationManagementClient(**emu.sdk_kwargs(credential))


def make_identity(emu, rg, name):
    from azure.mgmt.msi.models import Identity
    return msi_client(emu).user_assigned_identities.create_or_update(rg, name, Identity(location=emu.location))


def role_id(emu, guid):
    return f"/subscriptions/{emu.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def assign(emu, scope, principal_id, role_guid, principal_type="ServicePrincipal", name=None):
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    params = RoleAssignmentCreateParameters(role_definition_id=role_id(emu, role_guid), principal_id=principal_id,
                                            principal_type=principal_type)
    return auth_client(emu).role_assignments.create(scope, name or str(uuid.uuid4()), params)


def rg_scope(emu, rg=RG):
    return f"/subscriptions/{emu.subscription_id}/resourceGroups/{rg}"


# --- managed identities --------------------------------------------------------------------------

def test_identity_lifecycle(clean):
    emu = clean
    emu.rg(RG)
    client = msi_client(emu)
    created = make_identity(emu, RG, "bake-id")
    assert created.type == "Microsoft.ManagedIdentity/userAssignedIdentities"
    assert created.tenant_id == emu.env["AZURE_TENANT_ID"]
    assert uuid.UUID(created.principal_id) and uuid.UUID(created.client_id)
    again = make_identity(emu, RG, "bake-id")
    assert (again.principal_id, again.client_id) == (created.principal_id, created.client_id)   # PUT keeps ids
    for i in range(5):
        make_identity(emu, RG, f"extra-{i}")
    assert len(list(client.user_assigned_identities.list_by_resource_group(RG))) == 6
    assert "bake-id" in {i.name for i in client.user_assigned_identities.list_by_subscription()}
    updated = client.user_assigned_identities.update(RG, "bake-id", {"tags": {"team": "fleet"}})
    assert updated.tags == {"team": "fleet"}
    assert client.user_assigned_identities.get(RG, "bake-id").tags == {"team": "fleet"}
    client.user_assigned_identities.delete(RG, "bake-id")
    with pytest.raises(ResourceNotFoundError):
        client.user_assigned_identities.get(RG, "bake-id")
    recreated = make_identity(emu, RG, "bake-id")
    assert recreated.principal_id != created.principal_id                 # a new identity, a new principal


def test_identity_errors(clean):
    emu = clean
    path = f"/subscriptions/{emu.subscription_id}/resourceGroups/{RG}/providers/Microsoft.ManagedIdentity/" \
           "userAssignedIdentities/x"
    status, body, _ = emu.arm("PUT", path, {"location": emu.location}, api_version="2024-11-30")
    assert (status, body["error"]["code"]) == (404, "ResourceGroupNotFound")
    emu.rg(RG)
    status, body, _ = emu.arm("PUT", path, {}, api_version="2024-11-30")
    assert (status, body["error"]["code"]) == (400, "LocationRequired")
    status, body, _ = emu.arm("GET", path, api_version="2024-11-30")
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")
    emu.arm("PUT", path, {"location": emu.location}, api_version="2024-11-30")
    status, body, _ = emu.arm("PUT", path, {"location": "eastus"}, api_version="2024-11-30")
    assert (status, body["error"]["code"]) == (400, "InvalidResourceLocation")


# --- role definitions ----------------------------------------------------------------------------

@pytest.mark.parametrize("guid,name", [(CONTRIBUTOR, "Contributor"), (READER, "Reader"), (OWNER, "Owner"),
                                       (VM_CONTRIBUTOR, "Virtual Machine Contributor")])
def test_builtin_role_definitions(clean, guid, name):
    emu = clean
    client = auth_client(emu)
    scope = f"/subscriptions/{emu.subscription_id}"
    role = client.role_definitions.get(scope, guid)
    assert (role.role_name, role.role_type, role.id) == (name, "BuiltInRole", role_id(emu, guid))
    assert role.permissions[0].actions
    found = list(client.role_definitions.list(scope, filter=f"roleName eq '{name}'"))
    assert [r.name for r in found] == [guid]


def test_role_definition_by_id_and_unknown(clean):
    emu = clean
    client = auth_client(emu)
    role = client.role_definitions.get_by_id(role_id(emu, CONTRIBUTOR))
    assert "Microsoft.Authorization/*/Write" in role.permissions[0].not_actions
    with pytest.raises(HttpResponseError) as missing:
        client.role_definitions.get(f"/subscriptions/{emu.subscription_id}", str(uuid.uuid4()))
    assert missing.value.error.code == "RoleDefinitionDoesNotExist"


def test_custom_role_definition(clean):
    from azure.mgmt.authorization.models import Permission, RoleDefinition
    emu = clean
    client = auth_client(emu)
    scope = f"/subscriptions/{emu.subscription_id}"
    guid = str(uuid.uuid4())
    role = client.role_definitions.create_or_update(scope, guid, RoleDefinition(
        role_name="Image Publisher", description="Publish gallery image versions", role_type="CustomRole",
        permissions=[Permission(actions=["Microsoft.Compute/galleries/images/versions/*"])], assignable_scopes=[scope]))
    assert (role.role_type, role.name, role.id) == ("CustomRole", guid, role_id(emu, guid))
    assert [r.name for r in client.role_definitions.list(scope, filter="type eq 'CustomRole'")] == [guid]
    with pytest.raises(ResourceExistsError):
        client.role_definitions.create_or_update(scope, str(uuid.uuid4()), RoleDefinition(
            role_name="Image Publisher", permissions=[Permission(actions=["*/read"])], assignable_scopes=[scope]))
    client.role_definitions.delete(scope, guid)
    assert list(client.role_definitions.list(scope, filter="type eq 'CustomRole'")) == []


# --- role assignments ----------------------------------------------------------------------------

def test_role_assignment_lifecycle_at_group_and_resource_scope(clean):
    emu = clean
    emu.rg(RG)
    identity = make_identity(emu, RG, "bake-id")
    client = auth_client(emu)
    at_group = assign(emu, rg_scope(emu), identity.principal_id, CONTRIBUTOR)
    assert at_group.scope == rg_scope(emu) and at_group.principal_type == "ServicePrincipal"
    assert at_group.role_definition_id == role_id(emu, CONTRIBUTOR)
    assert at_group.id == f"{rg_scope(emu)}/providers/Microsoft.Authorization/roleAssignments/{at_group.name}"
    identity_scope = identity.id
    at_resource = assign(emu, identity_scope, identity.principal_id, READER)
    assert client.role_assignments.get(identity_scope, at_resource.name).role_definition_id == role_id(emu, READER)
    assert client.role_assignments.get_by_id(at_group.id).name == at_group.name
    # atScope(): at or above the scope; no filter: above and below too.
    at_scope = {a.name for a in client.role_assignments.list_for_scope(rg_scope(emu), filter="atScope()")}
    assert at_scope == {at_group.name}
    below = {a.name for a in client.role_assignments.list_for_scope(rg_scope(emu))}
    assert below == {at_group.name, at_resource.name}
    mine = {a.name for a in client.role_assignments.list_for_resource_group(
        RG, filter=f"principalId eq '{identity.principal_id}'")}
    assert mine == {at_group.name, at_resource.name}
    assert {a.name for a in client.role_assignments.list_for_scope(identity_scope, filter="atScope()")} == \
        {at_group.name, at_resource.name}
    deleted = client.role_assignments.delete(identity_scope, at_resource.name)
    assert deleted.name == at_resource.name
    assert client.role_assignments.delete(identity_scope, at_resource.name) is None     # 204: already gone
    with pytest.raises(ResourceNotFoundError):
        client.role_assignments.get(identity_scope, at_resource.name)


def test_role_assignment_errors(clean):
    emu = clean
    emu.rg(RG)
    identity = make_identity(emu, RG, "bake-id")
    base = f"{rg_scope(emu)}/providers/Microsoft.Authorization/roleAssignments"
    body = {"properties": {"roleDefinitionId": role_id(emu, CONTRIBUTOR), "principalId": identity.principal_id,
                           "principalType": "ServicePrincipal"}}
    status, err, _ = emu.arm("PUT", f"{base}/not-a-guid", body, api_version=AUTH_API)
    assert (status, err["error"]["code"]) == (400, "InvalidRoleAssignmentId")
    name = str(uuid.uuid4())
    assert emu.arm("PUT", f"{base}/{name}", body, api_version=AUTH_API)[0] == 201
    assert emu.arm("PUT", f"{base}/{name}", body, api_version=AUTH_API)[0] == 201           # idempotent
    status, err, _ = emu.arm("PUT", f"{base}/{uuid.uuid4()}", body, api_version=AUTH_API)
    assert (status, err["error"]) == (409, {"code": "RoleAssignmentExists",
                                            "message": "The role assignment already exists."})
    changed = {"properties": dict(body["properties"], roleDefinitionId=role_id(emu, READER))}
    status, err, _ = emu.arm("PUT", f"{base}/{name}", changed, api_version=AUTH_API)
    assert (status, err["error"]["code"]) == (400, "RoleAssignmentUpdateNotPermitted")
    unknown_role = {"properties": dict(body["properties"], roleDefinitionId=role_id(emu, str(uuid.uuid4())))}
    status, err, _ = emu.arm("PUT", f"{base}/{uuid.uuid4()}", unknown_role, api_version=AUTH_API)
    assert (status, err["error"]["code"]) == (400, "RoleDefinitionDoesNotExist")
    stranger = str(uuid.uuid4())
    nobody = {"properties": {"roleDefinitionId": role_id(emu, READER), "principalId": stranger}}
    status, err, _ = emu.arm("PUT", f"{base}/{uuid.uuid4()}", nobody, api_version=AUTH_API)
    assert (status, err["error"]["code"]) == (400, "PrincipalNotFound")
    assert stranger.replace("-", "") in err["error"]["message"] and "principalType" in err["error"]["message"]
    missing_group = f"/subscriptions/{emu.subscription_id}/resourceGroups/nope/providers/Microsoft.Authorization/" \
                    f"roleAssignments/{uuid.uuid4()}"
    status, err, _ = emu.arm("PUT", missing_group, body, api_version=AUTH_API)
    assert (status, err["error"]["code"]) == (404, "ResourceGroupNotFound")


def test_new_identity_needs_principal_type_until_replicated(clean):
    """Entra ID replication delay: without principalType a fresh identity is not found yet."""
    emu = clean
    emu.control.set_config(time_scale=0.1)                 # principal_replication: 30 s -> 3 s
    emu.rg(RG)
    identity = make_identity(emu, RG, "fresh-id")
    with pytest.raises(HttpResponseError) as early:
        assign(emu, rg_scope(emu), identity.principal_id, READER, principal_type=None)
    assert early.value.error.code == "PrincipalNotFound"
    assert assign(emu, rg_scope(emu), identity.principal_id, READER).principal_type == "ServicePrincipal"
    later = make_identity(emu, RG, "later-id")
    time.sleep(3.2)
    assert assign(emu, rg_scope(emu), later.principal_id, READER, principal_type=None).principal_type == \
        "ServicePrincipal"


def test_contributor_cannot_assign_roles(clean):
    emu = clean
    emu.rg(RG)
    identity = make_identity(emu, RG, "bake-id")
    contributor = emu.control.call("POST", "principals", {"name": "rbac-contributor", "role": "Contributor"})
    credential = emu.credential(contributor["client_id"], contributor["secret"])
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
    with pytest.raises(HttpResponseError) as denied:
        auth_client(emu, credential).role_assignments.create(
            rg_scope(emu), str(uuid.uuid4()), RoleAssignmentCreateParameters(
                role_definition_id=role_id(emu, READER), principal_id=identity.principal_id,
                principal_type="ServicePrincipal"))
    assert denied.value.status_code == 403
    assert "Microsoft.Authorization/roleAssignments/write" in str(denied.value)


def test_permission_rules_are_pure():
    contributor = [{"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]}]
    assert identity_rbac.permits(contributor, "Microsoft.Compute/galleries/images/versions/write")
    assert not identity_rbac.permits(contributor, "Microsoft.Authorization/roleAssignments/write")
    assert identity_rbac.permits([{"actions": ["Microsoft.Compute/galleries/images/versions/*"]}],
                                 "microsoft.compute/galleries/images/versions/write")
    assert identity_rbac.scope_covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/RG/x/y")
    assert not identity_rbac.scope_covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2")
    assert identity_rbac.scope_covers("/", "/subscriptions/s")
    assert identity_rbac.parse_filter("atScope() and assignedTo('abc')") == {
        "atScope": True, "principalId": None, "assignedTo": "abc", "roleName": None, "type": None}
