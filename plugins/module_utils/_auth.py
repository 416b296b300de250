# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who we are and which cloud we talk to.

Private to fleetops.vmss. Pure resolution (no azure.* import) plus one function,
``build_credential``, that imports azure.identity only when a module really needs a token
(``resolve_cloud`` starts that import in the background while it fetches a cloud's metadata).

Resolution order, for every setting, the first that is set wins:

1. the module parameter (``subscription_id``, ``client_id``, ``secret``, ``tenant``, ...);
2. the environment: azure.azcollection's names (``AZURE_SUBSCRIPTION_ID``, ``AZURE_SECRET``,
   ``AZURE_TENANT``, ... as injected by AWX / Automation Platform), then azure-identity's
   (``AZURE_CLIENT_SECRET``, ``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE``);
3. the profile (``profile`` / ``AZURE_PROFILE``, else ``default``) in ``~/.azure/credentials``.

``auth_source`` narrows that: ``env`` skips the file, ``credential_file`` skips the environment,
``cli``, ``msi`` and ``workload_identity`` pick that kind of credential; ``auto`` (the default)
uses a client secret, or a federated token when only ``AZURE_FEDERATED_TOKEN_FILE`` is there.
"""

from __future__ import annotations

import configparser
import email.utils
import http.client
import json
import math
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

from ._client import Tuning, gc_paused, import_in_background

AUTH_SOURCES = ("auto", "env", "credential_file", "cli", "msi", "workload_identity")

# Environment variables per setting, in order of precedence.
ENV_NAMES: Dict[str, Tuple[str, ...]] = {
    "subscription_id": ("AZURE_SUBSCRIPTION_ID",),
    "client_id": ("AZURE_CLIENT_ID",),
    "secret": ("AZURE_SECRET", "AZURE_CLIENT_SECRET"),
    "tenant": ("AZURE_TENANT", "AZURE_TENANT_ID"),
    "auth_source": ("AZURE_AUTH_SOURCE",),
    "profile": ("AZURE_PROFILE",),
    "cloud_environment": ("AZURE_CLOUD_ENVIRONMENT",),
    "cert_validation_mode": ("AZURE_CERT_VALIDATION_MODE",),
    "ca_bundle": ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
    "federated_token_file": ("AZURE_FEDERATED_TOKEN_FILE",),
    "authority_host": ("AZURE_AUTHORITY_HOST",),
}

# Keys read from a ~/.azure/credentials profile (azure.azcollection's file format).
PROFILE_KEYS = ("subscription_id", "client_id", "secret", "tenant", "cloud_environment",
                "cert_validation_mode", "ca_bundle")

CREDENTIALS_FILE = os.path.join("~", ".azure", "credentials")
CLI_PROFILE_FILE = os.path.join("~", ".azure", "azureProfile.json")
METADATA_API_VERSION = "2022-09-01"


class AuthError(Exception):
    """Credentials or cloud could not be resolved; the message is one sentence for the user."""


@dataclass(frozen=True)
class Cloud:
    name: str
    resource_manager: str   # ARM endpoint, no trailing slash
    login_endpoint: str     # Entra ID authority host, no trailing slash
    audience: str           # token audience, no trailing slash
    custom: bool = False    # from a metadata URL: Entra ID instance discovery cannot know it

    @property
    def scope(self) -> str:
        return self.audience + "/.default"


CLOUDS = {
    "AzureCloud": Cloud("AzureCloud", "https://management.azure.com",
                        "https://login.microsoftonline.com", "https://management.core.windows.net"),
    "AzureUSGovernment": Cloud("AzureUSGovernment", "https://management.usgovcloudapi.net",
                               "https://login.microsoftonline.us",
                               "https://management.core.usgovcloudapi.net"),
    "AzureChinaCloud": Cloud("AzureChinaCloud", "https://management.chinacloudapi.cn",
                             "https://login.chinacloudapi.cn",
                             "https://management.core.chinacloudapi.cn"),
}


@dataclass(frozen=True)
class Settings:
    """Everything resolved from parameters, environment and profile; secrets included."""

    auth_source: str = "auto"
    subscription_id: Optional[str] = None
    client_id: Optional[str] = None
    secret: Optional[str] = field(default=None, repr=False)
    tenant: Optional[str] = None
    cloud_environment: str = "AzureCloud"
    cert_validation_mode: str = "validate"
    ca_bundle: Optional[str] = None
    federated_token_file: Optional[str] = None
    authority_host: Optional[str] = None
    profile: Optional[str] = None

    @property
    def connection_verify(self):
        """What azure-core's ``connection_verify`` and our metadata fetch should verify against."""
        if self.cert_validation_mode == "ignore":
            return False
        return self.ca_bundle or True


# ---------------------------------------------------------------------------------------------
# settings

def _first_env(env: Mapping[str, str], key: str) -> Optional[str]:
    for name in ENV_NAMES.get(key, ()):
        if env.get(name):
            return env[name]
    return None


def read_profile(path: str, profile: Optional[str]) -> Dict[str, str]:
    """The ``[profile]`` section of an azure.azcollection credentials file, or {}.

    A profile that was asked for by name must exist; the implicit ``default`` may be absent.
    """
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        parser = None
    except (OSError, configparser.Error) as exc:
        raise AuthError("Cannot read Azure credentials file %s: %s." % (path, exc)) from exc
    section = profile or "default"
    if parser is None or not parser.has_section(section):
        if profile:
            raise AuthError("Azure profile '%s' was not found in %s: add a [%s] section or set "
                            "profile (AZURE_PROFILE) to one that exists." % (profile, path, profile))
        return {}
    return {key: parser.get(section, key) for key in PROFILE_KEYS if parser.get(section, key, fallback="")}


def cli_default_subscription(path: str = CLI_PROFILE_FILE) -> Optional[str]:
    """The subscription ``az account set`` chose, read from the CLI's profile without running az."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8-sig") as handle:  # the CLI writes a BOM
            subscriptions = json.load(handle).get("subscriptions", [])
    except (OSError, ValueError, AttributeError):
        return None
    return next((sub.get("id") for sub in subscriptions if sub.get("isDefault")), None)


def resolve_settings(params: Mapping[str, object], env: Mapping[str, str],
                     credentials_file: str = CREDENTIALS_FILE,
                     cli_profile_file: str = CLI_PROFILE_FILE) -> Settings:
    """Layer module parameters over the environment over the credentials-file profile."""

    def param(key):
        value = params.get(key)
        return value if value not in (None, "") else None

    auth_source = param("auth_source") or _first_env(env, "auth_source") or "auto"
    if auth_source not in AUTH_SOURCES:
        raise AuthError("Unknown auth_source '%s': use one of %s." % (auth_source, ", ".join(AUTH_SOURCES)))
    profile_name = param("profile") or _first_env(env, "profile")

    use_env = auth_source != "credential_file"
    use_file = auth_source != "env"
    from_file = read_profile(credentials_file, profile_name) if use_file else {}

    def value(key, from_env=use_env):
        return param(key) or (_first_env(env, key) if from_env else None) or from_file.get(key)

    subscription_id = value("subscription_id")
    if not subscription_id and auth_source == "cli":
        subscription_id = cli_default_subscription(cli_profile_file)

    return Settings(
        auth_source=auth_source,
        subscription_id=subscription_id,
        client_id=value("client_id"),
        secret=value("secret"),
        tenant=value("tenant"),
        cloud_environment=value("cloud_environment") or "AzureCloud",
        cert_validation_mode=value("cert_validation_mode") or "validate",
        ca_bundle=value("ca_bundle", from_env=True),  # process-wide TLS trust, not a credential
        federated_token_file=_first_env(env, "federated_token_file") if use_env else None,
        authority_host=_first_env(env, "authority_host") if use_env else None,
        profile=profile_name,
    )


def credential_kind(settings: Settings) -> str:
    """Which credential the settings call for: secret, workload_identity, cli or msi.

    Raises AuthError, one sentence naming exactly what is missing and where to set it.
    """
    if settings.cert_validation_mode not in ("validate", "ignore"):
        raise AuthError("Unknown cert_validation_mode '%s': use validate or ignore."
                        % settings.cert_validation_mode)
    source = settings.auth_source
    if source in ("cli", "msi"):
        kind, needed = source, ("subscription_id",)
    elif source == "workload_identity" or (
            source == "auto" and settings.federated_token_file and not settings.secret):
        kind, needed = "workload_identity", ("subscription_id", "client_id", "tenant", "federated_token_file")
    else:
        kind, needed = "secret", ("subscription_id", "client_id", "secret", "tenant")
    missing = [_HOW_TO_SET[key] for key in needed if not getattr(settings, key)]
    if missing:
        raise AuthError("Missing Azure credentials: set %s%s." % (_join(missing), _WHERE[source]))
    return kind


_HOW_TO_SET = {
    "subscription_id": "subscription_id (AZURE_SUBSCRIPTION_ID)",
    "client_id": "client_id (AZURE_CLIENT_ID)",
    "secret": "secret (AZURE_SECRET)",
    "tenant": "tenant (AZURE_TENANT)",
    "federated_token_file": "AZURE_FEDERATED_TOKEN_FILE",
}

_WHERE = {
    "auto": " as options, environment variables or in a ~/.azure/credentials profile, "
            "or choose auth_source cli, msi or workload_identity",
    "env": " in the environment",
    "credential_file": " in the ~/.azure/credentials profile",
    "cli": ", or pick a default subscription with az account set",
    "msi": "",
    "workload_identity": "",
}


def _join(items) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# ---------------------------------------------------------------------------------------------
# cloud

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)  # what azure-core's RetryPolicy retries


def retry_after(headers) -> Optional[float]:
    """Seconds the server asks us to wait, read the way azure-core reads them (Retry-After first)."""
    headers = {str(name).lower(): value for name, value in (headers or {}).items()}
    for name, scale in (("retry-after", 1.0), ("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        value = headers.get(name)
        if not value:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:  # an HTTP date, or nonsense (then our own backoff)
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                return None
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


def transient_wait(exc: Exception, retry: int, tuning: Tuning) -> Optional[float]:
    """How long to wait before retry number ``retry`` after ``exc``; None when it is not transient.

    Transient as for azure-core: 408, 429 and 5xx answers, refused, reset or dropped connections,
    timeouts. A certificate that does not verify, a 404 or a bad document is not.
    """
    if isinstance(exc, urllib.error.HTTPError):
        if exc.code not in RETRY_STATUSES:
            return None
        asked = retry_after(exc.headers)
        return asked if asked is not None else tuning.backoff(retry)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError) or not isinstance(reason, (OSError, http.client.HTTPException)):
        return None
    return tuning.backoff(retry)


def _opener(verify):
    """A urllib opener that verifies TLS as azure-core's ``connection_verify`` says: True (the system's CAs),
    False (no check) or a CA bundle path (only that bundle). Proxies come from the environment, as for the SDK."""
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))


def fetch_json(url: str, verify, timeout: float = 20.0, tuning: Tuning = Tuning(), sleep: Callable = time.sleep):
    """GET a JSON document over HTTPS; any failure becomes one AuthError sentence.

    ``verify`` is what azure-core calls ``connection_verify``: True, False or a CA bundle path.
    Transient failures are retried as the SDK clients retry theirs (``tuning``: the same limit, backoff
    and Retry-After), so a metadata endpoint that is down for about a minute does not fail the module.
    The standard library's urllib, not ansible.module_utils.urls: that one would add 56 kB to every module's
    payload and its imports (cookies, MIME, x509) to every start, for this one GET.
    """
    opener = _opener(verify)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    retry = 0
    while True:
        try:
            with opener.open(request, timeout=timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except Exception as exc:  # pylint: disable=broad-except  # URLError, HTTPError, ssl, socket, JSON
            retry += 1
            wait = transient_wait(exc, retry, tuning) if retry <= tuning.retry_total else None
            if wait is not None:
                sleep(wait)
                continue
            reason = getattr(exc, "reason", None) or exc
            attempts = " (tried %d times)" % retry if retry > 1 else ""
            raise AuthError("Failed to fetch cloud metadata from %s: %s%s; check cloud_environment "
                            "(AZURE_CLOUD_ENVIRONMENT) and ca_bundle (REQUESTS_CA_BUNDLE)."
                            % (url, reason, attempts)) from exc


def metadata_url(value: str) -> str:
    """The metadata URL with an api-version (ARM rejects the request without one)."""
    parts = urllib.parse.urlsplit(value)
    query = urllib.parse.parse_qs(parts.query)
    if "api-version" in query:
        return value
    extra = "api-version=" + METADATA_API_VERSION
    return urllib.parse.urlunsplit(parts._replace(query=parts.query + "&" + extra if parts.query else extra))


def parse_cloud_metadata(document, url: str) -> Cloud:
    """A Cloud from ARM's metadata: an array of clouds (2022-09-01) or a single object (older).

    From an array we take the cloud whose resourceManager is the host we asked, else the first.
    """
    entries = document if isinstance(document, list) else [document]
    entries = [entry for entry in entries if isinstance(entry, dict)]
    if not entries:
        raise AuthError("Cloud metadata from %s holds no cloud." % url)
    host = urllib.parse.urlsplit(url).hostname
    chosen = next((entry for entry in entries
                   if urllib.parse.urlsplit(str(entry.get("resourceManager", ""))).hostname == host),
                  entries[0])
    authentication = chosen.get("authentication") or {}
    resource_manager = chosen.get("resourceManager")
    login_endpoint = authentication.get("loginEndpoint")
    audiences = authentication.get("audiences") or []
    if not (resource_manager and login_endpoint and audiences):
        raise AuthError("Cloud metadata from %s lacks resourceManager, authentication.loginEndpoint "
                        "or authentication.audiences." % url)
    return Cloud(name=str(chosen.get("name") or host), resource_manager=resource_manager.rstrip("/"),
                 login_endpoint=login_endpoint.rstrip("/"), audience=audiences[0].rstrip("/"), custom=True)


def resolve_cloud(value: str, verify, fetch: Callable = fetch_json) -> Cloud:
    """A named cloud (case-insensitive) or a metadata discovery URL fetched over HTTPS."""
    for name, cloud in CLOUDS.items():
        if value.lower() == name.lower():
            return cloud
    if value.lower().startswith("https://"):
        url = metadata_url(value)
        if fetch is fetch_json:
            # The credential built next needs azure.identity: it is imported while the metadata is on its way
            # (fetch_json's own imports are at the top of this file, so none is shared with it mid-import).
            import_in_background("azure.identity")
        return parse_cloud_metadata(fetch(url, verify), url)
    raise AuthError("Unknown cloud_environment '%s': use AzureCloud, AzureUSGovernment, AzureChinaCloud "
                    "or a metadata URL such as https://HOST/metadata/endpoints?api-version=%s."
                    % (value, METADATA_API_VERSION))


# ---------------------------------------------------------------------------------------------
# credential

def credential_arguments(settings: Settings, cloud: Cloud) -> Tuple[str, Dict[str, object]]:
    """The azure.identity class name and keyword arguments for these settings: pure, for tests."""
    kind = credential_kind(settings)
    transport = {"connection_verify": settings.connection_verify}
    if kind == "cli":
        return "AzureCliCredential", {"tenant_id": settings.tenant} if settings.tenant else {}
    if kind == "msi":
        client = {"client_id": settings.client_id} if settings.client_id else {}
        return "ManagedIdentityCredential", {**transport, **client}
    authority = {"authority": (settings.authority_host or cloud.login_endpoint).rstrip("/")}
    if cloud.custom:
        # Instance discovery asks Entra ID about the authority: a private cloud is unknown there.
        authority["disable_instance_discovery"] = True
    identity = {"tenant_id": settings.tenant, "client_id": settings.client_id}
    if kind == "workload_identity":
        return "WorkloadIdentityCredential", {
            **transport, **authority, **identity, "token_file_path": settings.federated_token_file}
    return "ClientSecretCredential", {**transport, **authority, **identity, "client_secret": settings.secret}


def build_credential(settings: Settings, cloud: Cloud):
    """The azure.identity credential object (imports azure.identity now, not at module load)."""
    class_name, kwargs = credential_arguments(settings, cloud)
    with gc_paused():
        import azure.identity  # pylint: disable=import-outside-toplevel

    return getattr(azure.identity, class_name)(**kwargs)
