"""Microsoft Entra ID and ARM authentication, shaped the way azure-identity / MSAL expect them.

The emulator is its own cloud: `/metadata/endpoints` names base_url as the resource manager, the
login endpoint and the only token audience; the token endpoint issues HS256 JWTs for the
configured service principals (client secret or federated client assertion); `authenticate`
checks those tokens on ARM requests and `authorize` applies a small model of Azure RBAC.

A principal is a dict: client_id, secret, tenant, object_id, name, role. `role` is "Owner",
"Contributor", "Reader" or a list of action patterns such as "Microsoft.Compute/*" or "*/read".
"""
import base64
import binascii
import datetime
import functools
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import uuid
from urllib.parse import parse_qs

from emulator.arm import ArmError

CLOUD_NAME = "FleetOpsEmulator"
# Domain suffixes (storage, key vault, ...) for a cloud that has none of those services:
# `.invalid` never resolves, so a client that builds such a URL fails fast and visibly.
SUFFIX_DOMAIN = "fleetops.invalid"

DEFAULT_PRINCIPALS = (("fleetops-admin", "Owner"),
                      ("fleetops-contributor", "Contributor"),
                      ("fleetops-reader", "Reader"))

# Built-in roles as (actions, notActions), as in `az role definition list`.
BUILTIN_ROLES = {
    "owner": (("*",), ()),
    "contributor": (("*",), ("Microsoft.Authorization/*/Delete",
                             "Microsoft.Authorization/*/Write",
                             "Microsoft.Authorization/elevateAccess/Action",
                             "Microsoft.Blueprint/blueprintAssignments/write",
                             "Microsoft.Blueprint/blueprintAssignments/delete",
                             "Microsoft.Compute/galleries/share/action")),
    "reader": (("*/read",), ()),
}

TOKEN_LIFETIME = 3600
CLOCK_SKEW = 300  # seconds of nbf tolerance, as Entra-protected APIs allow
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Scopes MSAL may add to any request; they name no resource.
OIDC_SCOPES = {"openid", "profile", "offline_access"}
TENANT_ALIASES = {"common", "organizations"}

_NAMESPACE = uuid.UUID("6f1d3c52-2a0e-4c8b-9f7e-5d4a3b2c1e0f")
_SECRET_ALPHABET = string.ascii_letters + string.digits + "_.~-"


# --- principals ----------------------------------------------------------------------------------

def default_principals(subscription_id, tenant_id=None):
    """The Owner (written into env.sh), Contributor and Reader service principals.

    Ids are derived from subscription_id (and the tenant from it too unless given), so they are
    stable across resets and tests can find a principal by name; secrets are random.
    """
    tenant = tenant_id or _derived_uuid(subscription_id, "tenant")
    return [{
        "client_id": _derived_uuid(subscription_id, name, "client_id"),
        "secret": _new_secret(),
        "tenant": tenant,
        "object_id": _derived_uuid(subscription_id, name, "object_id"),
        "name": name,
        "role": role,
    } for name, role in DEFAULT_PRINCIPALS]


def _derived_uuid(*parts):
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _new_secret():
    """A 40-character secret in the shape Entra generates (three characters, '8Q~', 34 more)."""
    def chars(n):
        return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(n))
    return chars(3) + "8Q~" + chars(34)


# --- identity endpoints --------------------------------------------------------------------------

_ROUTES = (
    ("GET", re.compile(r"^/metadata/endpoints$", re.I), "metadata"),
    ("GET", re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$", re.I), "oidc_v2"),
    ("GET", re.compile(r"^/([^/]+)/\.well-known/openid-configuration$", re.I), "oidc_v1"),
    ("GET", re.compile(r"^/([^/]+)/discovery/v2\.0/keys$", re.I), "keys"),
    ("POST", re.compile(r"^/([^/]+)/oauth2/v2\.0/token$", re.I), "token_v2"),
    ("POST", re.compile(r"^/([^/]+)/oauth2/token$", re.I), "token_v1"),
)


def handle_identity(base_url, principals, signing_key, req, token_lifetime=TOKEN_LIFETIME,
                    now=None):
    """Serve cloud metadata, OIDC discovery and the token endpoints; None for any other request.

    Returns (status, body, headers). Paths are matched after collapsing repeated slashes,
    because clients join `loginEndpoint` (which ends in '/') with '/{tenant}/...'.
    """
    path = re.sub(r"/{2,}", "/", req.path).rstrip("/") or "/"
    for method, pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match and req.method.upper() == method:
            break
    else:
        return None
    base = base_url.rstrip("/")
    now = time.time() if now is None else now
    if kind == "metadata":
        return _metadata(base, req.query.get("api-version"))
    tenant = match.group(1)
    if kind == "keys":
        return 200, {"keys": []}, dict(_JSON)
    if kind.startswith("oidc"):
        return _openid_configuration(base, principals, tenant, kind == "oidc_v2", req, now)
    form = {k: v[0] for k, v in parse_qs((req.raw_body or b"").decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}
    return _token(base, principals, signing_key, tenant, form, req, token_lifetime, now,
                  v1=(kind == "token_v1"))


# Copied into each response: the server may add headers to what a handler returns.
_JSON = {"Content-Type": "application/json; charset=utf-8"}
_NO_STORE = {**_JSON, "Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _metadata(base, api_version):
    """The ARM cloud metadata document in the shape of the requested api-version.

    2022-09-01 and later: one cloud object (go-azure-sdk, `az cloud register`); 2019-05-01 up to
    then: an array of clouds (azure-cli's ARM_CLOUD_METADATA_URL); older versions such as 1.0 or
    2015-01-01: the legacy document msrestazure reads (galleryEndpoint, graphEndpoint, ...).
    """
    root = base + "/"
    version = api_version or "2022-09-01"
    if not re.match(r"^\d{4}-\d{2}-\d{2}", version) or version < "2019-05-01":
        return 200, {"galleryEndpoint": root, "graphEndpoint": root, "portalEndpoint": root,
                     "authentication": {"loginEndpoint": root, "audiences": [root]}}, dict(_JSON)
    cloud = _cloud(root)
    if version >= "2022-09-01":
        return 200, cloud, dict(_JSON)
    return 200, json.dumps([cloud]), dict(_JSON)


def _cloud(root):
    suffix = SUFFIX_DOMAIN
    return {
        "portal": root,
        "authentication": {"loginEndpoint": root, "audiences": [root],
                           "tenant": "common", "identityProvider": "AAD"},
        "media": root,
        "graphAudience": root,
        "graph": root,
        "name": CLOUD_NAME,
        "suffixes": {
            "azureDataLakeStoreFileSystem": f"datalakestore.{suffix}",
            "acrLoginServer": f"cr.{suffix}",
            "sqlServerHostname": f"database.{suffix}",
            "azureDataLakeAnalyticsCatalogAndJob": f"datalakeanalytics.{suffix}",
            "keyVaultDns": f"vault.{suffix}",
            "storage": f"storage.{suffix}",
            "azureFrontDoorEndpointSuffix": f"fd.{suffix}",
            "storageSyncEndpointSuffix": f"afs.{suffix}",
            "mhsmDns": f"managedhsm.{suffix}",
            "mysqlServerEndpoint": f"mysql.{suffix}",
            "postgresqlServerEndpoint": f"postgres.{suffix}",
            "mariadbServerEndpoint": f"mariadb.{suffix}",
            "synapseAnalytics": f"synapse.{suffix}",
            "attestationEndpoint": f"attest.{suffix}",
        },
        "batch": root,
        "resourceManager": root,
        "vmImageAliasDoc": root,
        "activeDirectoryDataLake": root,
        "sqlManagement": root,
        "microsoftGraphResourceId": root,
        "appInsightsResourceId": root,
        "appInsightsTelemetryChannelResourceId": root,
        "attestationResourceId": root,
        "synapseAnalyticsResourceId": root,
        "logAnalyticsResourceId": root,
        "ossrDbmsResourceId": root,
    }


def _known_tenants(principals):
    return {p["tenant"].lower() for p in principals}


def _openid_configuration(base, principals, tenant, v2, req, now):
    """OIDC discovery for a tenant (MSAL reads token_endpoint and authorization_endpoint)."""
    if tenant.lower() not in _known_tenants(principals) | TENANT_ALIASES:
        return _tenant_not_found(base, tenant, "invalid_tenant", req, now)
    issuer_tenant = "{tenantid}" if tenant.lower() in TENANT_ALIASES else tenant
    oauth = f"{base}/{tenant}/oauth2/v2.0" if v2 else f"{base}/{tenant}/oauth2"
    return 200, {
        "token_endpoint": f"{oauth}/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}/v2.0" if v2 else f"{base}/{issuer_tenant}/",
        "authorization_endpoint": f"{oauth}/authorize",
        "request_uri_parameter_supported": False,
        "tenant_region_scope": None,
        "cloud_instance_name": SUFFIX_DOMAIN,
    }, dict(_JSON)


def _token(base, principals, signing_key, tenant, form, req, lifetime, now, v1):
    """The client-credentials grant: validate tenant, client, credential and resource."""
    def fail(status, error, code, description):
        return _entra_error(base, status, error, code, description, req, now)

    if tenant.lower() not in _known_tenants(principals):
        return _tenant_not_found(base, tenant, "invalid_request", req, now)
    grant = form.get("grant_type", "")
    if grant != "client_credentials":
        return fail(400, "unsupported_grant_type", 70003,
                    f"The app requested an unsupported grant type '{grant}'.")
    client_id = form.get("client_id", "")
    if not client_id:
        return fail(400, "invalid_request", 900144,
                    "The request body must contain the following parameter: 'client_id'.")
    principal = next((p for p in principals if p["client_id"].lower() == client_id.lower()
                      and p["tenant"].lower() == tenant.lower()), None)
    if principal is None:
        return fail(400, "unauthorized_client", 700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{tenant}'. This can happen if the application has not been installed by "
                    "the administrator of the tenant or consented to by any user in the tenant. "
                    "You may have sent your authentication request to the wrong tenant.")
    failure = _check_client_credential(principal, form, now)
    if failure:
        return fail(*failure)
    resource, failure = _requested_resource(base, tenant, form, v1)
    if failure:
        return fail(*failure)

    access_token = issue_token(base, principal, signing_key, lifetime, now,
                               federated="client_assertion" in form)
    expires_in = int(lifetime) - 1
    if v1:
        return 200, {"token_type": "Bearer", "expires_in": str(expires_in),
                     "ext_expires_in": str(expires_in), "expires_on": str(int(now) + expires_in),
                     "not_before": str(int(now)), "resource": resource,
                     "access_token": access_token}, dict(_NO_STORE)
    return 200, {"token_type": "Bearer", "expires_in": expires_in,
                 "ext_expires_in": expires_in, "access_token": access_token}, dict(_NO_STORE)


def _check_client_credential(principal, form, now):
    """None when the secret or federated assertion proves the client; else the error tuple."""
    if "client_assertion" in form:
        return _check_assertion(principal, form, now)
    secret = form.get("client_secret")
    if not secret:
        return (401, "invalid_client", 7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the "
                "'client_credentials' grant type.")
    if not hmac.compare_digest(secret.encode(), (principal.get("secret") or "").encode()):
        return (401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{principal['client_id']}'.")
    return None


def _check_assertion(principal, form, now):
    """Workload identity: any well-formed, unexpired JWT whose subject is the client id."""
    claims = None
    if form.get("client_assertion_type") == ASSERTION_TYPE:
        claims = _unverified_claims(form["client_assertion"])
    if claims is None:
        return 401, "invalid_client", 50027, "JWT token is invalid or malformed."
    expiry = claims.get("exp")
    if isinstance(expiry, (int, float)) and expiry <= now:
        return (401, "invalid_client", 700024,
                f"Client assertion is not within its valid time range. Current time: "
                f"{_iso(now)}, expiry time of assertion {_iso(expiry)}.")
    if claims.get("sub") != principal["client_id"]:
        return (401, "invalid_client", 700213,
                f"No matching federated identity record found for presented assertion subject "
                f"'{claims.get('sub')}'. Please note that the matching is done using a "
                "case-sensitive comparison. Check your federated identity credential Subject, "
                "Audience and Issuer against the presented assertion.")
    return None


def _requested_resource(base, tenant, form, v1):
    """The resource named by `scope` (v2: '<resource>/.default') or `resource` (v1).

    Only this cloud's resource manager is a resource; asking for the public cloud's
    (https://management.azure.com/.default) is the mistake this is here to catch.
    """
    if v1:
        resource = form.get("resource", "")
        if not resource:
            return None, (400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'resource'.")
    else:
        scopes = [s for s in form.get("scope", "").split() if s.lower() not in OIDC_SCOPES]
        if not scopes:
            return None, (400, "invalid_request", 900144,
                          "The request body must contain the following parameter: 'scope'.")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return None, (400, "invalid_scope", 1002012,
                          f"The provided value for scope {' '.join(scopes)} is not valid. Client "
                          "credential flows must have a scope value with /.default suffixed to "
                          "the resource identifier (application ID URI).")
        resource = scopes[0][:-len(".default")]
    if resource.rstrip("/").lower() != base.lower():
        return None, (400, "invalid_resource", 500011,
                      f"The resource principal named {resource.rstrip('/')} was not found in "
                      f"the tenant named {tenant}. This can happen if the application has not "
                      "been installed by the administrator of the tenant or consented to by any "
                      "user in the tenant. You might have sent your authentication request to "
                      "the wrong tenant.")
    return resource, None


def _tenant_not_found(base, tenant, error, req, now):
    return _entra_error(base, 400, error, 90002,
                        f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                        "tenant ID and are signing into the correct cloud. Check with your "
                        "subscription administrator, this may happen if there are no active "
                        "subscriptions for the tenant.", req, now)


def _entra_error(base, status, error, code, description, req, now):
    """An Entra error body; MSAL and azure-identity surface error_description to the user."""
    trace_id = str(uuid.uuid4())
    correlation_id = req.headers.get("client-request-id") or str(uuid.uuid4())
    timestamp = _iso(now)
    return status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} "
                             f"Correlation ID: {correlation_id} Timestamp: {timestamp}",
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base}/error?code={code}",
    }, dict(_NO_STORE)


def _iso(epoch):
    epoch = min(max(epoch, 0), 253402300799)  # a client's claim may be any number
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


# --- tokens --------------------------------------------------------------------------------------

def issue_token(base_url, principal, signing_key, lifetime=TOKEN_LIFETIME, now=None,
                federated=False):
    """An ARM access token (v1 claims, HS256) for principal, valid for `lifetime` seconds."""
    base = base_url.rstrip("/")
    now = int(time.time() if now is None else now)
    tenant = principal["tenant"]
    issuer = f"{base}/{tenant}/"
    claims = {
        "aud": base + "/",
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + int(lifetime),
        "app_displayname": principal["name"],
        "appid": principal["client_id"],
        "appidacr": "2" if federated else "1",
        "idp": issuer,
        "idtyp": "app",
        "oid": principal["object_id"],
        "sub": principal["object_id"],
        "tid": tenant,
        "uti": secrets.token_urlsafe(16),
        "ver": "1.0",
    }
    header = {"typ": "JWT", "alg": "HS256", "kid": CLOUD_NAME}
    signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
    return f"{signing_input}.{_signature(signing_key, signing_input)}"


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _unb64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _signature(signing_key, signing_input):
    digest = hmac.new(signing_key, signing_input.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _unverified_claims(token):
    """The claims of a compact JWT without checking its signature; None when malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def _unauthenticated(base, code, message, description="The access token is invalid."):
    """A 401 as ARM answers it, with the WWW-Authenticate challenge azure-core parses."""
    challenge = (f'Bearer authorization_uri="{base}/", error="invalid_token", '
                 f'error_description="{description}"')
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


def authenticate(base_url, principals, signing_key, req, now=None):
    """The principal behind the request's bearer token, or ArmError 401 as ARM words it."""
    base = base_url.rstrip("/")
    now = time.time() if now is None else now
    header = req.headers.get("Authorization")
    if not header:
        raise _unauthenticated(
            base, "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise _unauthenticated(
            base, "AuthenticationFailed",
            f"Authentication failed. The authentication scheme of {scheme} is not supported.",
            "The authentication scheme is not supported.")
    token = token.strip()
    claims = _unverified_claims(token)
    if claims is None:
        raise _unauthenticated(base, "InvalidAuthenticationToken", "The access token is invalid.")
    signing_input, _, signature = token.rpartition(".")
    expected = _signature(signing_key, signing_input)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise _unauthenticated(base, "InvalidAuthenticationToken",
                               "The access token has invalid signature.")
    _check_claims(base, principals, claims, now)
    principal = next((p for p in principals if p["client_id"] == claims.get("appid")
                      and p["tenant"] == claims.get("tid")), None)
    if principal is None:  # deleted since the token was issued
        raise _unauthenticated(base, "InvalidAuthenticationToken", "The access token is invalid.")
    return principal


def _check_claims(base, principals, claims, now):
    """Audience, issuer and lifetime checks, each answered with ARM's own error code."""
    audience = claims.get("aud")
    if not isinstance(audience, str) or audience.rstrip("/").lower() != base.lower():
        raise _unauthenticated(
            base, "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{audience}'. "
            f"It should exactly match with one of the allowed audiences '{base}/','{base}'.")
    tenant = str(claims.get("tid", ""))
    if (claims.get("iss") != f"{base}/{tenant}/"
            or tenant.lower() not in _known_tenants(principals)):
        expected = min(_known_tenants(principals), default="")
        raise _unauthenticated(
            base, "InvalidAuthenticationTokenTenant",
            f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match "
            f"the tenant '{base}/{expected}/' associated with this subscription. Please use the "
            f"authority (URL) '{base}/{expected}' to get the token.")
    expiry, not_before = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(expiry, (int, float)) or not isinstance(not_before, (int, float)):
        raise _unauthenticated(base, "InvalidAuthenticationToken", "The access token is invalid.")
    if expiry <= now:
        raise _unauthenticated(
            base, "ExpiredAuthenticationToken",
            f"The access token expiry UTC time '{_arm_time(expiry)}' is earlier than current "
            f"UTC time '{_arm_time(now)}'.", "The access token is expired.")
    if not_before > now + CLOCK_SKEW:
        raise _unauthenticated(base, "InvalidAuthenticationToken",
                               "The access token is not yet valid.")


def _arm_time(epoch):
    """'5/10/2024 2:09:40 PM', the .NET invariant format ARM uses in token errors."""
    moment = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    hour = moment.hour % 12 or 12
    return (f"{moment.month}/{moment.day}/{moment.year} "
            f"{hour}:{moment:%M:%S} {'AM' if moment.hour < 12 else 'PM'}")


# --- authorization -------------------------------------------------------------------------------

def authorize(principal, action, scope):
    """Raise ArmError 403 AuthorizationFailed unless principal's role allows action."""
    if not action_allowed(principal["role"], action):
        raise ArmError(
            403, "AuthorizationFailed",
            f"The client '{principal['client_id']}' with object id '{principal['object_id']}' "
            f"does not have authorization to perform action '{action}' over scope '{scope}' or "
            "the scope is invalid. If access was recently granted, please refresh your "
            "credentials.")


def action_allowed(role, action):
    """Whether a built-in role name or a list of action patterns allows `action`.

    Patterns match case-insensitively and `*` matches any run of characters, '/' included,
    as in Azure role definitions ("Microsoft.Compute/*", "*/read").
    """
    if isinstance(role, str):
        try:
            actions, not_actions = BUILTIN_ROLES[role.lower()]
        except KeyError:
            raise ValueError(f"unknown role {role!r}: expected Owner, Contributor, Reader "
                             "or a list of action patterns") from None
    else:
        actions, not_actions = tuple(role), ()
    return (any(_pattern(p).fullmatch(action) for p in actions)
            and not any(_pattern(p).fullmatch(action) for p in not_actions))


@functools.lru_cache(maxsize=512)
def _pattern(pattern):
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.I)
