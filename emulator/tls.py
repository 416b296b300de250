"""Local certificate authority and server certificate for the emulator's HTTPS endpoint.

Azure SDKs only speak HTTPS, so the emulator needs a certificate that clients can be told to
trust (REQUESTS_CA_BUNDLE / connection_verify=ca.pem). The CA is created once and kept, so a
trust decision made by a user survives restarts; the server certificate is re-issued from the
same CA when it is missing or close to expiry.
"""
import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
# Within the 825-day ceiling some TLS clients enforce for server certificates.
SERVER_VALIDITY = datetime.timedelta(days=825)
RENEW_BEFORE = datetime.timedelta(days=30)
# Tolerates clocks of clients that run slightly behind ours.
BACKDATE = datetime.timedelta(hours=1)

SERVER_HOSTS = ("localhost",)
SERVER_IPS = ("127.0.0.1",)


def ensure_certs(state_dir):
    """Return {ca, cert, key} paths under state_dir/tls/, creating what is missing or stale.

    `ca-key.pem` is kept next to them (mode 0600) so the server certificate can be re-issued
    without changing the CA that clients trust.
    """
    tls_dir = os.path.join(state_dir, "tls")
    os.makedirs(tls_dir, mode=0o700, exist_ok=True)
    paths = {
        "ca": os.path.join(tls_dir, "ca.pem"),
        "cert": os.path.join(tls_dir, "server.pem"),
        "key": os.path.join(tls_dir, "server-key.pem"),
    }
    ca_key_path = os.path.join(tls_dir, "ca-key.pem")
    now = _now()

    if _usable(paths["ca"], now) and os.path.exists(ca_key_path):
        ca_cert = _read_cert(paths["ca"])
        ca_key = _read_key(ca_key_path)
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue_ca(ca_key, now)
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(paths["ca"], ca_cert.public_bytes(serialization.Encoding.PEM))
        _remove(paths["cert"])  # signed by a CA that no longer exists

    if not (_usable(paths["cert"], now) and os.path.exists(paths["key"])
            and _issued_by(paths["cert"], ca_cert)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue_server(key, ca_key, ca_cert, now)
        _write(paths["key"], _key_pem(key), private=True)
        _write(paths["cert"], cert.public_bytes(serialization.Encoding.PEM))
    return paths


def server_ssl_context(paths):
    """An SSLContext for the listening socket, serving the certificate from ensure_certs()."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(paths["cert"], paths["key"])
    return context


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _usable(cert_path, now):
    """True when the certificate exists and stays valid for longer than RENEW_BEFORE."""
    if not os.path.exists(cert_path):
        return False
    try:
        cert = _read_cert(cert_path)
    except ValueError:
        return False
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - RENEW_BEFORE > now


def _issued_by(cert_path, ca_cert):
    """True when the certificate was signed by ca_cert (it may predate a regenerated CA)."""
    try:
        _read_cert(cert_path).verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issue_ca(ca_key, now):
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fleetops.vmss emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, "FleetOps Emulator Local CA"),
    ])
    public = ca_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _issue_server(key, ca_key, ca_cert, now):
    public = key.public_key()
    san = [x509.DNSName(h) for h in SERVER_HOSTS]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_HOSTS[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _read_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _read_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def _write(path, data, private=False):
    """Write atomically (temp file + rename) so a crash never leaves half a PEM behind."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)  # umask may have narrowed it
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
