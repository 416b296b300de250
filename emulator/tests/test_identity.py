"""Entra ID endpoints, ARM token checks and RBAC, unit-level and through the real SDKs."""
import base64
import http.server
import json
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential, ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient

from emulator import identity, tls
from emulator.arm import ArmError

SUBSCRIPTION = "4f1c9c2e-5b4a-4b8e-9a51-1d2f3c4b5a60"
BASE = "https://127.0.0.1:8443"
KEY = b"k" * 32
PRINCIPALS = identity.default_principals(SUBSCRIPTION)
ADMIN, CONTRIBUTOR, READER = PRINCIPALS
TENANT = ADMIN["tenant"]


class Headers(dict):
    """The case-insensitive header mapping the server hands to handlers."""

    def __init__(self, items=()):
        super().__init__((k.lower(), v) for k, v in dict(items).items())

    def get(self, key, default=None):
        return super().get(key.lower(), default)


class Request:
    def __init__(self, method, path, query=None, headers=None, raw_body=b""):
        self.method, self.path, self.raw_body = method, path, raw_body
        self.query = {k.lower(): v for k, v in (query or {}).items()}
        self.headers = Headers(headers or {})
        self.body = None


def token_request(tenant=TENANT, path="oauth2/v2.0/token", **form):
    fields = {"grant_type": "client_credentials", "client_id": ADMIN["client_id"],
              "client_secret": ADMIN["secret"], "scope": BASE + "/.default"}
    fields.update(form)
    fields = {k: v for k, v in fields.items() if v is not None}
    request = Request("POST", f"/{tenant}/{path}", raw_body=urlencode(fields).encode())
    return identity.handle_identity(BASE, PRINCIPALS, KEY, request)


def bearer(token):
    return Request("GET", "/subscriptions/x", headers={"Authorization": "Bearer " + token})


def claims_of(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def unsigned_jwt(claims):
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"


# --- principals ----------------------------------------------------------------------------------

def test_default_principals_are_deterministic_apart_from_secrets():
    again = identity.default_principals(SUBSCRIPTION)

    assert [(p["name"], p["role"]) for p in PRINCIPALS] == [
        ("fleetops-admin", "Owner"), ("fleetops-contributor", "Contributor"),
        ("fleetops-reader", "Reader")]
    for first, second in zip(PRINCIPALS, again):
        assert {k: v for k, v in first.items() if k != "secret"} == \
               {k: v for k, v in second.items() if k != "secret"}
        assert first["secret"] != second["secret"]
        assert len(first["secret"]) == 40 and first["secret"][3:6] == "8Q~"
    assert len({p["client_id"] for p in PRINCIPALS} | {p["object_id"] for p in PRINCIPALS}) == 6
    assert {p["tenant"] for p in PRINCIPALS} == {TENANT}
    assert identity.default_principals(SUBSCRIPTION, "t-1")[0]["tenant"] == "t-1"
    assert identity.default_principals("other-sub")[0]["client_id"] != ADMIN["client_id"]


# --- cloud metadata and discovery ----------------------------------------------------------------

def metadata(api_version):
    query = {"api-version": api_version} if api_version else {}
    request = Request("GET", "/metadata/endpoints", query=query)
    status, body, headers = identity.handle_identity(BASE, PRINCIPALS, KEY, request)
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    return json.loads(body) if isinstance(body, str) else body


def test_metadata_2022_09_01_is_one_cloud_as_go_sdk_and_az_cloud_register_read_it():
    cloud = metadata("2022-09-01")

    assert cloud["name"] == "FleetOpsEmulator"
    assert cloud["resourceManager"] == BASE + "/"
    assert cloud["authentication"] == {"loginEndpoint": BASE + "/", "audiences": [BASE + "/"],
                                       "tenant": "common", "identityProvider": "AAD"}
    for field in ("portal", "graph", "graphAudience", "media", "batch", "sqlManagement",
                  "microsoftGraphResourceId", "activeDirectoryDataLake", "vmImageAliasDoc",
                  "logAnalyticsResourceId", "appInsightsResourceId", "ossrDbmsResourceId",
                  "appInsightsTelemetryChannelResourceId", "attestationResourceId",
                  "synapseAnalyticsResourceId"):
        assert cloud[field] == BASE + "/", field
    for suffix in ("storage", "keyVaultDns", "sqlServerHostname", "acrLoginServer", "mhsmDns"):
        assert cloud["suffixes"][suffix].endswith(".invalid")
    assert metadata(None) == cloud


def test_metadata_2019_05_01_is_a_list_of_clouds():
    assert metadata("2019-05-01") == [metadata("2022-09-01")]


def test_metadata_legacy_versions_have_the_msrestazure_shape():
    for version in ("2015-01-01", "1.0"):
        assert metadata(version) == {
            "galleryEndpoint": BASE + "/", "graphEndpoint": BASE + "/",
            "portalEndpoint": BASE + "/",
            "authentication": {"loginEndpoint": BASE + "/", "audiences": [BASE + "/"]}}


def test_other_paths_and_methods_are_not_identity_requests():
    for method, path in (("GET", "/subscriptions/x"), ("POST", "/metadata/endpoints"),
                         ("GET", f"/{TENANT}/oauth2/v2.0/token")):
        assert identity.handle_identity(BASE, PRINCIPALS, KEY, Request(method, path)) is None


@pytest.mark.parametrize("path,issuer,token_endpoint", [
    (f"/{TENANT}/v2.0/.well-known/openid-configuration", f"{BASE}/{TENANT}/v2.0",
     f"{BASE}/{TENANT}/oauth2/v2.0/token"),
    (f"//{TENANT}/v2.0/.well-known/openid-configuration", f"{BASE}/{TENANT}/v2.0",
     f"{BASE}/{TENANT}/oauth2/v2.0/token"),
    (f"/{TENANT}/.well-known/openid-configuration", f"{BASE}/{TENANT}/",
     f"{BASE}/{TENANT}/oauth2/token"),
    ("/common/v2.0/.well-known/openid-configuration", BASE + "/{tenantid}/v2.0",
     f"{BASE}/common/oauth2/v2.0/token"),
])
def test_openid_configuration(path, issuer, token_endpoint):
    status, body, _ = identity.handle_identity(BASE + "/", PRINCIPALS, KEY, Request("GET", path))

    assert status == 200
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == token_endpoint
    assert body["authorization_endpoint"].startswith(BASE + "/")


def test_openid_configuration_of_unknown_tenant():
    path = "/00000000-0000-0000-0000-000000000000/v2.0/.well-known/openid-configuration"
    status, body, _ = identity.handle_identity(BASE, PRINCIPALS, KEY, Request("GET", path))

    assert status == 400 and body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant '00000000-")


# --- token endpoint ------------------------------------------------------------------------------

def test_client_secret_grant_issues_an_arm_token():
    status, body, headers = token_request()

    assert status == 200 and headers["Cache-Control"].startswith("no-store")
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    claims = claims_of(body["access_token"])
    assert claims["aud"] == BASE + "/"
    assert claims["iss"] == f"{BASE}/{TENANT}/"
    assert (claims["tid"], claims["oid"], claims["appid"]) == (
        TENANT, ADMIN["object_id"], ADMIN["client_id"])
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert identity.authenticate(BASE, PRINCIPALS, KEY, bearer(body["access_token"])) is ADMIN


def test_double_slash_scope_of_the_resource_id_is_accepted():
    """azure_rm_common builds '<audiences[0]>/.default', i.e. 'https://host//.default'."""
    assert token_request(scope=BASE + "//.default")[0] == 200
    assert token_request(scope=f"{BASE}/.default offline_access openid profile")[0] == 200


def test_v1_token_endpoint_takes_a_resource():
    status, body, _ = token_request(path="oauth2/token", scope=None, resource=BASE + "/")

    assert status == 200
    assert body["resource"] == BASE + "/" and body["expires_in"] == "3599"
    assert int(body["expires_on"]) - int(body["not_before"]) == 3599


@pytest.mark.parametrize("form,status,error,code", [
    ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
    ({"client_secret": None}, 401, "invalid_client", 7000216),
    ({"client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client", 700016),
    ({"client_id": None}, 400, "invalid_request", 900144),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ({"scope": "https://management.azure.com/.default"}, 400, "invalid_resource", 500011),
    ({"scope": BASE + "/user_impersonation"}, 400, "invalid_scope", 1002012),
    ({"scope": None}, 400, "invalid_request", 900144),
])
def test_token_errors(form, status, error, code):
    got_status, body, _ = token_request(**form)

    assert (got_status, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]


def test_wrong_secret_names_the_app():
    _, body, _ = token_request(client_secret="wrong")

    assert "Invalid client secret provided." in body["error_description"]
    assert ADMIN["client_id"] in body["error_description"]


def test_unknown_tenant_at_the_token_endpoint():
    status, body, _ = token_request(tenant="aaaaaaaa-0000-0000-0000-000000000000")

    assert (status, body["error"], body["error_codes"]) == (400, "invalid_request", [90002])


def test_principal_without_a_secret_cannot_use_one():
    federated_only = {k: v for k, v in ADMIN.items() if k != "secret"}
    request = Request("POST", f"/{TENANT}/oauth2/v2.0/token", raw_body=urlencode({
        "grant_type": "client_credentials", "client_id": ADMIN["client_id"],
        "client_secret": "guess", "scope": BASE + "/.default"}).encode())

    status, body, _ = identity.handle_identity(BASE, [federated_only], KEY, request)

    assert (status, body["error_codes"]) == (401, [7000215])


def test_client_of_another_tenant_is_unknown_here():
    other = dict(ADMIN, tenant="other-tenant", client_id="c-other")
    request = Request("POST", f"/{TENANT}/oauth2/v2.0/token", raw_body=urlencode({
        "grant_type": "client_credentials", "client_id": "c-other",
        "client_secret": ADMIN["secret"], "scope": BASE + "/.default"}).encode())

    status, body, _ = identity.handle_identity(BASE, PRINCIPALS + [other], KEY, request)

    assert (status, body["error_codes"]) == (400, [700016])


def assertion_form(claims, assertion_type=identity.ASSERTION_TYPE):
    return {"client_secret": None, "client_assertion": unsigned_jwt(claims),
            "client_assertion_type": assertion_type}


def test_federated_client_assertion():
    status, body, _ = token_request(**assertion_form({"sub": ADMIN["client_id"],
                                                      "exp": time.time() + 600}))

    assert status == 200
    assert claims_of(body["access_token"])["appidacr"] == "2"


@pytest.mark.parametrize("form,code", [
    (assertion_form({"sub": "system:serviceaccount:default:other"}), 700213),
    (assertion_form({"sub": ADMIN["client_id"], "exp": time.time() - 1}), 700024),
    (assertion_form({"sub": ADMIN["client_id"], "exp": -1e300}), 700024),
    (assertion_form({"sub": ADMIN["client_id"]}, assertion_type="jwt"), 50027),
    ({"client_secret": None, "client_assertion": "not-a-jwt",
      "client_assertion_type": identity.ASSERTION_TYPE}, 50027),
])
def test_rejected_client_assertions(form, code):
    status, body, _ = token_request(**form)

    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [code])


# --- authenticate --------------------------------------------------------------------------------

def fresh_token(principal=ADMIN, base=BASE, key=KEY, **kwargs):
    return identity.issue_token(base, principal, key, **kwargs)


def auth_error(request, now=None, principals=PRINCIPALS):
    with pytest.raises(ArmError) as caught:
        identity.authenticate(BASE, principals, KEY, request, now=now)
    error = caught.value
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith(
        f'Bearer authorization_uri="{BASE}/", error="invalid_token"')
    return error


def test_authenticate_accepts_each_default_principal():
    for principal in PRINCIPALS:
        request = bearer(fresh_token(principal))
        assert identity.authenticate(BASE + "/", PRINCIPALS, KEY, request) is principal


def test_missing_authorization_header():
    error = auth_error(Request("GET", "/subscriptions/x"))

    assert error.code == "AuthenticationFailed"
    assert error.message == "Authentication failed. The 'Authorization' header is missing."


def test_unsupported_scheme():
    error = auth_error(Request("GET", "/", headers={"authorization": "Basic dXNlcjpwYXNz"}))

    assert error.code == "AuthenticationFailed"
    assert "authentication scheme of Basic is not supported" in error.message


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 40 + ".e30"])
def test_malformed_tokens(token):
    error = auth_error(bearer(token))

    assert (error.code, error.message) == ("InvalidAuthenticationToken",
                                           "The access token is invalid.")


def test_token_signed_with_another_key():
    error = auth_error(bearer(fresh_token(key=b"other key")))

    assert (error.code, error.message) == ("InvalidAuthenticationToken",
                                           "The access token has invalid signature.")


def test_expired_token():
    token = fresh_token(lifetime=60, now=1_700_000_000)

    error = auth_error(bearer(token), now=1_700_000_060)

    assert error.code == "ExpiredAuthenticationToken"
    assert error.message == ("The access token expiry UTC time '11/14/2023 10:14:20 PM' is "
                             "earlier than current UTC time '11/14/2023 10:14:20 PM'.")
    assert identity.authenticate(BASE, PRINCIPALS, KEY, bearer(token), now=1_700_000_059)


def test_token_lifetime_of_the_token_endpoint_applies():
    request = Request("POST", f"/{TENANT}/oauth2/v2.0/token", raw_body=urlencode({
        "grant_type": "client_credentials", "client_id": ADMIN["client_id"],
        "client_secret": ADMIN["secret"], "scope": BASE + "/.default"}).encode())
    _, body, _ = identity.handle_identity(BASE, PRINCIPALS, KEY, request, token_lifetime=5,
                                          now=1_700_000_000)

    claims = claims_of(body["access_token"])
    assert claims["exp"] == 1_700_000_005 and body["expires_in"] == 4
    assert auth_error(bearer(body["access_token"]), now=1_700_000_005).code == \
        "ExpiredAuthenticationToken"


def test_token_for_another_audience():
    error = auth_error(bearer(fresh_token(base="https://management.azure.com")))

    assert error.code == "InvalidAuthenticationTokenAudience"
    assert "wrong audience or resource 'https://management.azure.com/'" in error.message


def test_token_from_another_tenant():
    stranger = dict(ADMIN, tenant="99999999-9999-9999-9999-999999999999")

    error = auth_error(bearer(fresh_token(stranger)))

    assert error.code == "InvalidAuthenticationTokenTenant"
    assert f"It must match the tenant '{BASE}/{TENANT}/'" in error.message


def test_token_of_a_removed_principal():
    error = auth_error(bearer(fresh_token(READER)), principals=[ADMIN, CONTRIBUTOR])

    assert error.code == "InvalidAuthenticationToken"


# --- authorization -------------------------------------------------------------------------------

VMSS_WRITE = "Microsoft.Compute/virtualMachineScaleSets/write"
VMSS_READ = "Microsoft.Compute/virtualMachineScaleSets/read"
ROLE_WRITE = "Microsoft.Authorization/roleAssignments/write"


@pytest.mark.parametrize("role,action,allowed", [
    ("Owner", ROLE_WRITE, True),
    ("Owner", VMSS_WRITE, True),
    ("Contributor", VMSS_WRITE, True),
    ("Contributor", "Microsoft.Compute/virtualMachineScaleSets/restart/action", True),
    ("Contributor", ROLE_WRITE, False),
    ("Contributor", "Microsoft.Authorization/roleAssignments/delete", False),
    ("Contributor", "Microsoft.Authorization/roleAssignments/read", True),
    ("Reader", VMSS_READ, True),
    ("Reader", VMSS_WRITE, False),
    ("Reader", "Microsoft.Compute/virtualMachineScaleSets/restart/action", False),
    ("reader", VMSS_READ, True),
    (["Microsoft.Compute/virtualMachineScaleSets/*"], VMSS_WRITE, True),
    (["microsoft.compute/VIRTUALMACHINESCALESETS/*"], VMSS_WRITE, True),
    (["Microsoft.Compute/virtualMachineScaleSets/*"], "Microsoft.Compute/galleries/read", False),
    (["*/read"], "Microsoft.Network/virtualNetworks/subnets/read", True),
    (["*/read"], "Microsoft.Network/virtualNetworks/write", False),
    (["Microsoft.Compute/*/read", "Microsoft.Insights/autoscalesettings/*"],
     "Microsoft.Insights/autoscalesettings/write", True),
    ([], VMSS_READ, False),
])
def test_action_allowed(role, action, allowed):
    assert identity.action_allowed(role, action) is allowed


def test_unknown_role_name_is_a_configuration_error():
    with pytest.raises(ValueError, match="unknown role 'Ownr'"):
        identity.action_allowed("Ownr", VMSS_READ)


def test_authorize_names_client_action_and_scope():
    scope = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/" \
            "virtualMachineScaleSets/web"
    identity.authorize(READER, VMSS_READ, scope)

    with pytest.raises(ArmError) as caught:
        identity.authorize(READER, VMSS_WRITE, scope)

    error = caught.value
    assert (error.status, error.code) == (403, "AuthorizationFailed")
    assert error.message == (
        f"The client '{READER['client_id']}' with object id '{READER['object_id']}' does not "
        f"have authorization to perform action '{VMSS_WRITE}' over scope '{scope}' or the scope "
        "is invalid. If access was recently granted, please refresh your credentials.")


# --- end to end through azure-identity and azure-mgmt-compute ------------------------------------

NETWORK_ONLY = dict(ADMIN, client_id="5a0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d",
                    object_id="6b1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f", secret="net-secret",
                    name="network-only", role=["Microsoft.Network/*"])


class _Handler(http.server.BaseHTTPRequestHandler):
    """Identity endpoints via handle_identity; anything else is one ARM list call."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._serve()

    def do_POST(self):
        self._serve()

    def _serve(self):
        server = self.server
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self.command, url.path, query=dict(parse_qsl(url.query)),
                          headers=dict(self.headers.items()), raw_body=self.rfile.read(length))
        answer = identity.handle_identity(server.base_url, server.principals, KEY, request)
        if answer is None:
            answer = self._arm(request)
        status, body, headers = answer
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _arm(self, request):
        server = self.server
        try:
            principal = identity.authenticate(server.base_url, server.principals, KEY, request)
            identity.authorize(principal, VMSS_READ, f"/subscriptions/{SUBSCRIPTION}")
        except ArmError as error:
            return error.status, error.envelope(), error.headers
        return 200, {"value": []}, {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    paths = tls.ensure_certs(str(tmp_path_factory.mktemp("state")))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = tls.server_ssl_context(paths).wrap_socket(httpd.socket, server_side=True)
    httpd.base_url = f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.principals = PRINCIPALS + [NETWORK_ONLY]
    httpd.ca = paths["ca"]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def credential(server, principal, secret=None):
    return ClientSecretCredential(principal["tenant"], principal["client_id"],
                                  secret or principal["secret"], authority=server.base_url,
                                  disable_instance_discovery=True, connection_verify=server.ca)


def test_client_secret_credential_gets_a_token_authenticate_accepts(server):
    token = credential(server, ADMIN).get_token(server.base_url + "/.default")

    request = bearer(token.token)
    assert identity.authenticate(server.base_url, server.principals, KEY, request) is ADMIN
    assert 3500 < token.expires_on - time.time() <= 3600


def test_wrong_secret_raises_client_authentication_error(server):
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential(server, ADMIN, secret="wrong").get_token(server.base_url + "/.default")


def test_client_assertion_credential(server):
    def assertion():
        return unsigned_jwt({"sub": ADMIN["client_id"], "exp": time.time() + 600})

    cred = ClientAssertionCredential(TENANT, ADMIN["client_id"], assertion,
                                     authority=server.base_url, disable_instance_discovery=True,
                                     connection_verify=server.ca)
    token = cred.get_token(server.base_url + "/.default")

    assert claims_of(token.token)["appidacr"] == "2"


def compute(server, principal):
    return ComputeManagementClient(credential(server, principal), SUBSCRIPTION,
                                   base_url=server.base_url,
                                   credential_scopes=[server.base_url + "/.default"],
                                   connection_verify=server.ca)


def test_sdk_call_is_authenticated_and_authorized(server):
    assert list(compute(server, READER).virtual_machine_scale_sets.list_all()) == []


def test_sdk_sees_authorization_failed(server):
    with pytest.raises(HttpResponseError) as caught:
        list(compute(server, NETWORK_ONLY).virtual_machine_scale_sets.list_all())

    assert caught.value.status_code == 403
    assert caught.value.error.code == "AuthorizationFailed"
    assert NETWORK_ONLY["client_id"] in caught.value.message


def test_sdk_without_the_emulator_scope_is_refused_by_entra(server):
    client = ComputeManagementClient(credential(server, ADMIN), SUBSCRIPTION,
                                     base_url=server.base_url, connection_verify=server.ca)

    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        list(client.virtual_machine_scale_sets.list_all())
