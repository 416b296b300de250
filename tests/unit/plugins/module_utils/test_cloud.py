# -*- coding: utf-8 -*-
# Copyright: FleetOps maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloud resolution: named clouds, metadata documents of both shapes, fetching over HTTPS."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.fleetops.vmss.plugins.module_utils._auth import (
    AuthError,
    fetch_json,
    metadata_url,
    parse_cloud_metadata,
    resolve_cloud,
    retry_after,
)

URL = "https://management.lab.example/metadata/endpoints?api-version=2022-09-01"


def cloud_entry(name, arm, login="https://login.lab.example/", audiences=("https://management.core.lab.example/",)):
    return {"name": name, "resourceManager": arm, "portal": "https://portal.example",
            "authentication": {"loginEndpoint": login, "audiences": list(audiences), "tenant": "common",
                               "identityProvider": "AAD"}}


@pytest.mark.parametrize("name, arm, login, scope", [
    ("AzureCloud", "https://management.azure.com", "https://login.microsoftonline.com",
     "https://management.core.windows.net/.default"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us",
     "https://management.core.usgovcloudapi.net/.default"),
    ("AzureChinaCloud", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn",
     "https://management.core.chinacloudapi.cn/.default"),
])
def test_named_clouds(name, arm, login, scope):
    cloud = resolve_cloud(name.lower(), True, fetch=pytest.fail)  # names are case-insensitive, never fetched
    assert (cloud.name, cloud.resource_manager, cloud.login_endpoint, cloud.scope, cloud.custom) == (
        name, arm, login, scope, False)


def test_unknown_name_lists_the_choices():
    with pytest.raises(AuthError, match="Unknown cloud_environment 'AzureGermanCloud': use AzureCloud, "
                                        "AzureUSGovernment, AzureChinaCloud or a metadata URL"):
        resolve_cloud("AzureGermanCloud", True)


def test_array_of_clouds_picks_the_one_served_by_the_host_asked():
    document = [cloud_entry("Other", "https://management.other.example/"),
                cloud_entry("Lab", "https://management.lab.example/")]
    cloud = parse_cloud_metadata(document, URL)
    assert (cloud.name, cloud.resource_manager, cloud.login_endpoint, cloud.audience, cloud.custom) == (
        "Lab", "https://management.lab.example", "https://login.lab.example",
        "https://management.core.lab.example", True)
    assert cloud.scope == "https://management.core.lab.example/.default"


def test_array_without_a_host_match_takes_the_first():
    document = [cloud_entry("First", "https://a.example/"), cloud_entry("Second", "https://b.example/")]
    assert parse_cloud_metadata(document, URL).name == "First"


def test_single_object_shape():
    cloud = parse_cloud_metadata(cloud_entry("Stack", "https://management.lab.example/"), URL)
    assert (cloud.name, cloud.resource_manager) == ("Stack", "https://management.lab.example")


def test_metadata_missing_endpoints_is_an_error():
    broken = {"name": "Lab", "resourceManager": "https://management.lab.example/", "authentication": {}}
    with pytest.raises(AuthError, match="lacks resourceManager, authentication.loginEndpoint or authentication.audiences"):
        parse_cloud_metadata([broken], URL)
    with pytest.raises(AuthError, match="holds no cloud"):
        parse_cloud_metadata([], URL)


def test_metadata_url_gets_an_api_version_when_it_has_none():
    assert metadata_url("https://h/metadata/endpoints") == "https://h/metadata/endpoints?api-version=2022-09-01"
    assert metadata_url("https://h/metadata/endpoints?x=1") == "https://h/metadata/endpoints?x=1&api-version=2022-09-01"
    assert metadata_url(URL) == URL


def test_resolve_cloud_fetches_with_the_verify_setting():
    calls = []

    def fetch(url, verify):
        calls.append((url, verify))
        return [cloud_entry("Lab", "https://management.lab.example/")]

    cloud = resolve_cloud("https://management.lab.example/metadata/endpoints", "/ca.pem", fetch=fetch)
    assert cloud.name == "Lab"
    assert calls == [("https://management.lab.example/metadata/endpoints?api-version=2022-09-01", "/ca.pem")]


# --- fetching over real HTTPS, against a local server with its own CA ---------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    # pylint: disable=import-outside-toplevel
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetops unit test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return str(directory / "cert.pem"), str(directory / "key.pem")


@pytest.fixture(scope="module")
def metadata_server(tls_files):
    failures = {}  # path -> failures answered so far

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # pylint: disable=invalid-name
            # /flaky/<status or "drop">/<n>/<key>/metadata/...: the first n requests fail that way
            parts = self.path.split("/")
            if parts[1] == "flaky":
                kind, count = parts[2], int(parts[3])
                failures[self.path] = failures.get(self.path, 0) + 1
                if failures[self.path] <= count:
                    if kind == "drop":  # the connection closes with no answer
                        self.close_connection = True
                        self.connection.close()
                        return
                    self.send_response(int(kind))
                    if parts[4] == "retry-after":
                        self.send_header("Retry-After", "2")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.path = "/" + "/".join(parts[5:])
            if not self.path.startswith("/metadata/endpoints?api-version="):
                self.send_error(404)
                return
            body = json.dumps([cloud_entry("Local", "https://127.0.0.1:%d/" % self.server.server_port,
                                           login="https://127.0.0.1:%d" % self.server.server_port)]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # pylint: disable=arguments-differ
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "https://127.0.0.1:%d" % server.server_port
    server.shutdown()
    server.server_close()


def test_metadata_fetched_over_https_with_the_ca_bundle(metadata_server, tls_files):
    cloud = resolve_cloud(metadata_server + "/metadata/endpoints", tls_files[0])
    assert (cloud.name, cloud.resource_manager, cloud.login_endpoint, cloud.custom) == (
        "Local", metadata_server, metadata_server, True)


def test_metadata_fetch_without_the_ca_fails_with_one_clear_message(metadata_server):
    with pytest.raises(AuthError) as caught:
        resolve_cloud(metadata_server + "/metadata/endpoints", True)
    message = str(caught.value)
    assert message.startswith("Failed to fetch cloud metadata from %s/metadata/endpoints?api-version=2022-09-01: "
                              % metadata_server)
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert message.endswith("check cloud_environment (AZURE_CLOUD_ENVIRONMENT) and ca_bundle (REQUESTS_CA_BUNDLE).")


def test_metadata_fetch_with_validation_off(metadata_server):
    assert resolve_cloud(metadata_server + "/metadata/endpoints", False).name == "Local"


def test_metadata_fetch_http_error_and_refused_connection(metadata_server, tls_files):
    with pytest.raises(AuthError, match="Failed to fetch cloud metadata from .*/nowhere: Not Found"):
        fetch_json(metadata_server + "/nowhere", tls_files[0])
    slept = []
    with pytest.raises(AuthError, match=r"Failed to fetch cloud metadata from https://127.0.0.1:9/x: .*refused"
                                        r".* \(tried 8 times\)"):
        fetch_json("https://127.0.0.1:9/x", True, timeout=5, sleep=slept.append)
    assert slept == BACKOFF  # a refused connection is retried like the SDK clients retry it


# --- retries: what the SDK clients' retry policy does (Tuning), for the metadata fetch too -------

BACKOFF = [0.0, 1.6, 3.2, 6.4, 12.8, 20.0, 20.0]  # no Retry-After: 64 s in all, then the error


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "504", "drop"])
def test_metadata_fetch_retries_transient_failures_up_to_the_limit(metadata_server, tls_files, kind):
    slept = []
    url = "%s/flaky/%s/7/backoff/metadata/endpoints?api-version=2022-09-01" % (metadata_server, kind)
    document = fetch_json(url, tls_files[0], sleep=slept.append)
    assert document[0]["name"] == "Local"
    assert slept == BACKOFF


def test_metadata_fetch_honours_retry_after(metadata_server, tls_files):
    slept = []
    url = "%s/flaky/503/3/retry-after/metadata/endpoints?api-version=2022-09-01" % metadata_server
    assert fetch_json(url, tls_files[0], sleep=slept.append)[0]["name"] == "Local"
    assert slept == [2.0, 2.0, 2.0]


def test_metadata_fetch_fails_once_the_retries_are_spent(metadata_server, tls_files):
    slept = []
    url = "%s/flaky/503/8/spent/metadata/endpoints?api-version=2022-09-01" % metadata_server
    with pytest.raises(AuthError, match=r"Service Unavailable \(tried 8 times\); check cloud_environment"):
        fetch_json(url, tls_files[0], sleep=slept.append)
    assert slept == BACKOFF


def test_metadata_fetch_does_not_retry_what_a_retry_cannot_fix(metadata_server, tls_files):
    slept = []
    with pytest.raises(AuthError, match="Not Found; check"):
        fetch_json(metadata_server + "/nowhere", tls_files[0], sleep=slept.append)
    with pytest.raises(AuthError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch_json(metadata_server + "/metadata/endpoints", True, sleep=slept.append)
    assert slept == []


def test_retry_after_is_read_like_azure_core():
    assert retry_after({"Retry-After": "3", "retry-after-ms": "10"}) == 3.0
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"x-ms-retry-after-ms": "40"}) == 0.04
    assert retry_after({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}) == 0.0  # a date in the past
    assert retry_after({"Retry-After": "inf"}) is None and retry_after({"Retry-After": "soon"}) is None
    assert retry_after({}) is None
