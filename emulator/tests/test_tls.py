"""The local CA and server certificate: created once, trusted by stock TLS clients."""
import datetime
import ipaddress
import os
import socket
import ssl
import stat
import threading

from cryptography import x509

from emulator import tls


def _cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def test_creates_ca_and_server_certificate(tmp_path):
    paths = tls.ensure_certs(str(tmp_path))

    assert paths == {
        "ca": str(tmp_path / "tls" / "ca.pem"),
        "cert": str(tmp_path / "tls" / "server.pem"),
        "key": str(tmp_path / "tls" / "server-key.pem"),
    }
    ca, server = _cert(paths["ca"]), _cert(paths["cert"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= datetime.timedelta(days=3650)
    server.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    for private in (paths["key"], str(tmp_path / "tls" / "ca-key.pem")):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600


def test_reuses_existing_files(tmp_path):
    first = tls.ensure_certs(str(tmp_path))
    before = {name: open(path, "rb").read() for name, path in first.items()}

    second = tls.ensure_certs(str(tmp_path))

    assert {name: open(path, "rb").read() for name, path in second.items()} == before


def test_missing_server_certificate_is_reissued_by_the_same_ca(tmp_path):
    paths = tls.ensure_certs(str(tmp_path))
    ca_before = open(paths["ca"], "rb").read()
    os.remove(paths["cert"])

    tls.ensure_certs(str(tmp_path))

    assert open(paths["ca"], "rb").read() == ca_before
    _cert(paths["cert"]).verify_directly_issued_by(_cert(paths["ca"]))


def test_lost_ca_key_regenerates_the_whole_chain(tmp_path):
    paths = tls.ensure_certs(str(tmp_path))
    ca_before = open(paths["ca"], "rb").read()
    os.remove(str(tmp_path / "tls" / "ca-key.pem"))

    tls.ensure_certs(str(tmp_path))

    assert open(paths["ca"], "rb").read() != ca_before
    _cert(paths["cert"]).verify_directly_issued_by(_cert(paths["ca"]))


def _serve_once(context):
    """Accept one TLS connection on 127.0.0.1 and send b'ok'; return the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept():
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.sendall(b"ok")
            except ssl.SSLError:  # the client refused the certificate
                conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return port


def test_default_client_context_trusts_the_server_by_ip_and_name(tmp_path):
    paths = tls.ensure_certs(str(tmp_path))
    for host in ("127.0.0.1", "localhost"):
        port = _serve_once(tls.server_ssl_context(paths))
        client = ssl.create_default_context(cafile=paths["ca"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client.wrap_socket(raw, server_hostname=host) as conn:
                assert conn.recv(2) == b"ok"


def test_other_host_names_are_rejected(tmp_path):
    paths = tls.ensure_certs(str(tmp_path))
    port = _serve_once(tls.server_ssl_context(paths))
    client = ssl.create_default_context(cafile=paths["ca"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            client.wrap_socket(raw, server_hostname="management.azure.com")
        except ssl.SSLCertVerificationError:
            return
    raise AssertionError("a certificate for another host name was accepted")
