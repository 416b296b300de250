# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential resolution: module parameters > environment > ~/.azure/credentials profile."""

from __future__ import annotations

import json

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils._auth import (
    CLOUDS,
    AuthError,
    Cloud,
    build_credential,
    credential_arguments,
    credential_kind,
    resolve_settings,
)

AWX_ENV = {  # what AWX's "Microsoft Azure Resource Manager" credential injects
    "AZURE_SUBSCRIPTION_ID": "sub-env",
    "AZURE_CLIENT_ID": "client-env",
    "AZURE_SECRET": "secret-env",
    "AZURE_TENANT": "tenant-env",
    "AZURE_CLOUD_ENVIRONMENT": "AzureUSGovernment",
}

PROFILE_FILE = """
[default]
subscription_id = sub-default
client_id = client-default
secret = secret-default
tenant = tenant-default

[staging]
subscription_id = sub-staging
client_id = client-staging
secret = secret-staging
tenant = tenant-staging
cloud_environment = AzureChinaCloud
cert_validation_mode = ignore
"""

CUSTOM_CLOUD = Cloud("Lab", "https://127.0.0.1:8443", "https://127.0.0.1:8443", "https://management.lab", custom=True)


@pytest.fixture
def creds_file(tmp_path):
    path = tmp_path / "credentials"
    path.write_text(PROFILE_FILE)
    return str(path)


@pytest.fixture
def no_file(tmp_path):
    return str(tmp_path / "absent")


def resolve(params=None, env=None, credentials_file=None, **kwargs):
    return resolve_settings(params or {}, env or {}, credentials_file=credentials_file, **kwargs)


def test_awx_injected_environment_just_works(no_file):
    settings = resolve(env=AWX_ENV, credentials_file=no_file)
    assert (settings.subscription_id, settings.client_id, settings.secret, settings.tenant) == (
        "sub-env", "client-env", "secret-env", "tenant-env")
    assert settings.cloud_environment == "AzureUSGovernment"
    assert credential_kind(settings) == "secret"


def test_module_parameters_win_over_environment_and_profile(creds_file):
    params = {"subscription_id": "sub-param", "client_id": "client-param", "secret": "secret-param",
              "tenant": "tenant-param", "cloud_environment": "AzureCloud"}
    settings = resolve(params, AWX_ENV, creds_file)
    assert (settings.subscription_id, settings.client_id, settings.secret, settings.tenant,
            settings.cloud_environment) == ("sub-param", "client-param", "secret-param", "tenant-param", "AzureCloud")


def test_environment_wins_over_profile(creds_file):
    settings = resolve(env=AWX_ENV, credentials_file=creds_file)
    assert settings.client_id == "client-env"


def test_each_setting_falls_through_on_its_own(creds_file):
    # A parameter for one setting does not hide the environment or profile for the others.
    settings = resolve({"subscription_id": "sub-param"}, {"AZURE_TENANT": "tenant-env"}, creds_file)
    assert (settings.subscription_id, settings.tenant, settings.client_id) == ("sub-param", "tenant-env", "client-default")


def test_empty_parameters_count_as_unset(no_file):
    settings = resolve({"subscription_id": "", "client_id": None}, AWX_ENV, no_file)
    assert (settings.subscription_id, settings.client_id) == ("sub-env", "client-env")


@pytest.mark.parametrize("setting, names", [
    ("subscription_id", ["AZURE_SUBSCRIPTION_ID"]),
    ("client_id", ["AZURE_CLIENT_ID"]),
    ("secret", ["AZURE_SECRET", "AZURE_CLIENT_SECRET"]),
    ("tenant", ["AZURE_TENANT", "AZURE_TENANT_ID"]),
    ("cloud_environment", ["AZURE_CLOUD_ENVIRONMENT"]),
    ("cert_validation_mode", ["AZURE_CERT_VALIDATION_MODE"]),
    ("auth_source", ["AZURE_AUTH_SOURCE"]),
    ("profile", ["AZURE_PROFILE"]),
    ("ca_bundle", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]),
    ("federated_token_file", ["AZURE_FEDERATED_TOKEN_FILE"]),
    ("authority_host", ["AZURE_AUTHORITY_HOST"]),
])
def test_each_environment_variable_in_precedence_order(setting, names, tmp_path):
    values = {"auth_source": ["env", "msi"], "cert_validation_mode": ["ignore", "validate"]}.get(setting)
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\n[first]\n[second]\n")
    values = values or (["first", "second"] if setting == "profile" else ["v-first", "v-second"])
    env = dict(zip(names, values))
    assert getattr(resolve(env=env, credentials_file=str(credentials)), setting) == values[0]
    if len(names) > 1:  # the later name is used when the earlier is absent
        assert getattr(resolve(env={names[1]: values[1]}, credentials_file=str(credentials)), setting) == values[1]


def test_default_profile_is_read(creds_file):
    settings = resolve(credentials_file=creds_file)
    assert (settings.subscription_id, settings.secret) == ("sub-default", "secret-default")
    assert credential_kind(settings) == "secret"


@pytest.mark.parametrize("params, env", [({"profile": "staging"}, {}), ({}, {"AZURE_PROFILE": "staging"})])
def test_named_profile_from_parameter_or_environment(creds_file, params, env):
    settings = resolve(params, env, creds_file)
    assert (settings.subscription_id, settings.cloud_environment, settings.cert_validation_mode) == (
        "sub-staging", "AzureChinaCloud", "ignore")
    assert settings.connection_verify is False


def test_named_profile_that_does_not_exist_is_an_error(creds_file):
    with pytest.raises(AuthError, match="Azure profile 'prod' was not found in .*credentials"):
        resolve({"profile": "prod"}, credentials_file=creds_file)


def test_malformed_credentials_file_is_an_error(tmp_path):
    path = tmp_path / "credentials"
    path.write_text("subscription_id = no section header\n")
    with pytest.raises(AuthError, match="Cannot read Azure credentials file"):
        resolve(credentials_file=str(path))


def test_auth_source_env_ignores_the_file(creds_file):
    settings = resolve({"auth_source": "env"}, {"AZURE_SUBSCRIPTION_ID": "sub-env"}, creds_file)
    assert (settings.subscription_id, settings.client_id) == ("sub-env", None)
    with pytest.raises(AuthError, match=r"set client_id \(AZURE_CLIENT_ID\), secret \(AZURE_SECRET\) and "
                                        r"tenant \(AZURE_TENANT\) in the environment"):
        credential_kind(settings)


def test_auth_source_credential_file_ignores_the_environment(creds_file):
    settings = resolve({"auth_source": "credential_file"}, AWX_ENV, creds_file)
    assert (settings.subscription_id, settings.client_id, settings.cloud_environment) == (
        "sub-default", "client-default", "AzureCloud")


def test_credential_file_still_trusts_the_ca_bundle_of_the_environment(creds_file):
    settings = resolve({"auth_source": "credential_file"}, {"REQUESTS_CA_BUNDLE": "/e/ca.pem"}, creds_file)
    assert settings.connection_verify == "/e/ca.pem"


def test_unknown_auth_source_names_the_choices(no_file):
    with pytest.raises(AuthError, match="Unknown auth_source 'password': use one of auto, env, "):
        resolve({"auth_source": "password"}, credentials_file=no_file)


def test_missing_everything_is_one_sentence_naming_what_to_set(no_file):
    with pytest.raises(AuthError) as caught:
        credential_kind(resolve(credentials_file=no_file))
    message = str(caught.value)
    assert message == ("Missing Azure credentials: set subscription_id (AZURE_SUBSCRIPTION_ID), client_id "
                       "(AZURE_CLIENT_ID), secret (AZURE_SECRET) and tenant (AZURE_TENANT) as options, environment "
                       "variables or in a ~/.azure/credentials profile, or choose auth_source cli, msi or "
                       "workload_identity.")
    assert message.count(". ") == 0 and message.endswith(".")


def test_missing_secret_names_only_what_is_missing(no_file):
    env = {"AZURE_SUBSCRIPTION_ID": "s", "AZURE_CLIENT_ID": "c", "AZURE_TENANT": "t"}
    with pytest.raises(AuthError) as caught:
        credential_kind(resolve(env=env, credentials_file=no_file))
    assert str(caught.value).startswith("Missing Azure credentials: set secret (AZURE_SECRET) as options, ")


@pytest.mark.parametrize("source, expected", [
    ("cli", "Missing Azure credentials: set subscription_id (AZURE_SUBSCRIPTION_ID), or pick a default "
            "subscription with az account set."),
    ("msi", "Missing Azure credentials: set subscription_id (AZURE_SUBSCRIPTION_ID)."),
    ("workload_identity", "Missing Azure credentials: set subscription_id (AZURE_SUBSCRIPTION_ID), client_id "
                          "(AZURE_CLIENT_ID), tenant (AZURE_TENANT) and AZURE_FEDERATED_TOKEN_FILE."),
])
def test_missing_credentials_message_per_auth_source(no_file, tmp_path, source, expected):
    settings = resolve({"auth_source": source}, credentials_file=no_file, cli_profile_file=str(tmp_path / "none"))
    with pytest.raises(AuthError) as caught:
        credential_kind(settings)
    assert str(caught.value) == expected


def test_defaults(no_file):
    settings = resolve(credentials_file=no_file)
    assert (settings.auth_source, settings.cloud_environment, settings.cert_validation_mode) == (
        "auto", "AzureCloud", "validate")
    assert settings.connection_verify is True


def test_ca_bundle_parameter_wins_and_becomes_connection_verify(no_file):
    settings = resolve({"ca_bundle": "/p/ca.pem"}, {"REQUESTS_CA_BUNDLE": "/e/ca.pem"}, no_file)
    assert settings.connection_verify == "/p/ca.pem"


def test_unknown_cert_validation_mode_from_environment(no_file):
    env = dict(AWX_ENV, AZURE_CERT_VALIDATION_MODE="maybe")
    with pytest.raises(AuthError, match="Unknown cert_validation_mode 'maybe'"):
        credential_kind(resolve(env=env, credentials_file=no_file))


def test_secret_is_not_in_repr(no_file):
    assert "secret-env" not in repr(resolve(env=AWX_ENV, credentials_file=no_file))


# --- kinds of credential ------------------------------------------------------------------------

def test_client_secret_credential_for_a_named_cloud(no_file):
    settings = resolve(env=AWX_ENV, credentials_file=no_file)
    name, kwargs = credential_arguments(settings, CLOUDS["AzureUSGovernment"])
    assert name == "ClientSecretCredential"
    assert kwargs == {"tenant_id": "tenant-env", "client_id": "client-env", "client_secret": "secret-env",
                      "authority": "https://login.microsoftonline.us", "connection_verify": True}


def test_client_secret_credential_for_a_custom_cloud_skips_instance_discovery(no_file):
    env = dict(AWX_ENV, REQUESTS_CA_BUNDLE="/tmp/ca.pem")
    name, kwargs = credential_arguments(resolve(env=env, credentials_file=no_file), CUSTOM_CLOUD)
    assert name == "ClientSecretCredential"
    assert kwargs == {"tenant_id": "tenant-env", "client_id": "client-env", "client_secret": "secret-env",
                      "authority": "https://127.0.0.1:8443", "disable_instance_discovery": True,
                      "connection_verify": "/tmp/ca.pem"}


def test_authority_host_environment_replaces_the_login_endpoint(no_file):
    env = dict(AWX_ENV, AZURE_AUTHORITY_HOST="https://login.example/")
    kwargs = credential_arguments(resolve(env=env, credentials_file=no_file), CLOUDS["AzureCloud"])[1]
    assert kwargs["authority"] == "https://login.example"


def test_cli_uses_the_cli_default_subscription(tmp_path, no_file):
    profile = tmp_path / "azureProfile.json"
    subscriptions = [{"id": "a", "isDefault": False}, {"id": "b", "isDefault": True}]
    profile.write_text("\ufeff" + json.dumps({"subscriptions": subscriptions}), encoding="utf-8")  # the CLI's BOM
    settings = resolve({"auth_source": "cli"}, credentials_file=no_file, cli_profile_file=str(profile))
    assert settings.subscription_id == "b"
    assert credential_arguments(settings, CLOUDS["AzureCloud"]) == ("AzureCliCredential", {})


def test_cli_prefers_an_explicit_subscription_and_passes_the_tenant(tmp_path, no_file):
    settings = resolve({"auth_source": "cli", "subscription_id": "s", "tenant": "t"}, credentials_file=no_file,
                       cli_profile_file=str(tmp_path / "absent.json"))
    assert credential_arguments(settings, CLOUDS["AzureCloud"]) == ("AzureCliCredential", {"tenant_id": "t"})


@pytest.mark.parametrize("client_id, expected", [(None, {}), ("uami", {"client_id": "uami"})])
def test_managed_identity_system_or_user_assigned(no_file, client_id, expected):
    settings = resolve({"auth_source": "msi", "subscription_id": "s", "client_id": client_id}, credentials_file=no_file)
    assert credential_arguments(settings, CLOUDS["AzureCloud"]) == (
        "ManagedIdentityCredential", dict(expected, connection_verify=True))


def test_managed_identity_still_needs_a_subscription(no_file):
    with pytest.raises(AuthError, match=r"set subscription_id \(AZURE_SUBSCRIPTION_ID\)\.$"):
        credential_kind(resolve({"auth_source": "msi"}, credentials_file=no_file))


def test_workload_identity_from_federated_token_file(no_file):
    env = {"AZURE_SUBSCRIPTION_ID": "s", "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t",
           "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}
    for params in ({}, {"auth_source": "workload_identity"}):  # auto picks it when there is no secret
        name, kwargs = credential_arguments(resolve(params, env, no_file), CLOUDS["AzureCloud"])
        assert name == "WorkloadIdentityCredential"
        assert kwargs == {"tenant_id": "t", "client_id": "c", "token_file_path": "/var/run/token",
                          "authority": "https://login.microsoftonline.com", "connection_verify": True}


def test_workload_identity_names_the_token_file_when_missing(no_file):
    settings = resolve({"auth_source": "workload_identity"}, {"AZURE_SUBSCRIPTION_ID": "s", "AZURE_CLIENT_ID": "c",
                                                              "AZURE_TENANT": "t"}, no_file)
    with pytest.raises(AuthError, match=r"^Missing Azure credentials: set AZURE_FEDERATED_TOKEN_FILE\.$"):
        credential_kind(settings)


def test_a_secret_wins_over_a_federated_token_in_auto(no_file):
    env = dict(AWX_ENV, AZURE_FEDERATED_TOKEN_FILE="/var/run/token")
    assert credential_kind(resolve(env=env, credentials_file=no_file)) == "secret"


def test_build_credential_makes_the_azure_identity_object(no_file):
    credential = build_credential(resolve(env=AWX_ENV, credentials_file=no_file), CUSTOM_CLOUD)
    assert type(credential).__name__ == "ClientSecretCredential"
    # Private attributes, read only to prove the arguments reached azure-identity (no network here).
    assert credential._authority == "https://127.0.0.1:8443"  # pylint: disable=protected-access
    assert credential._instance_discovery is False  # pylint: disable=protected-access
