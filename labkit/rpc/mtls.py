"""go-plugin's AutoMTLS, as labkit does it: mutual TLS with certificates made at each start.

How go-plugin does it (hashicorp/go-plugin 1.8.0: ``client.go``, ``server.go``, ``mtls.go``):

1. The host makes a key pair and a self-signed certificate for ``localhost`` and hands the
   certificate (PEM) to the plugin in ``PLUGIN_CLIENT_CERT``.
2. The plugin makes its own, serves TLS that requires a client certificate signed by the
   host's, and puts its certificate (DER, in unpadded base64) in the handshake line's
   sixth field.
3. The host trusts exactly that certificate and presents its own; the broker's extra
   connections use the same pair.

Each side trusts one certificate it received over a channel it already trusts (the
environment, the plugin's stdout), so no certificate authority is involved. go-plugin makes
both certificates on ECDSA P-521. The BoringSSL inside grpcio cannot use them
(:data:`~labkit.rpc.protocol.AUTOMTLS_WHY`), so labkit makes its own on P-256, which both
sides of a labkit-to-labkit connection accept, and refuses a P-521 peer before the handshake
would fail, unless asked to insist (to see the failure itself).
"""

from __future__ import annotations

import base64
import datetime
import secrets
from dataclasses import dataclass

import grpc

from ..errors import InputError
from .protocol import AUTOMTLS_WHY

#: The name go-plugin puts in its certificates and checks on the other side's.
SERVER_NAME = "localhost"
#: What a labkit channel needs to check a certificate made for :data:`SERVER_NAME` when it
#: connects to a Unix socket (grpcio would check the socket's path otherwise).
CHANNEL_OPTIONS = (("grpc.ssl_target_name_override", SERVER_NAME),)
#: The curves grpcio's BoringSSL accepts in a TLS 1.3 CertificateVerify.
USABLE_CURVES = ("secp256r1", "secp384r1")


@dataclass(frozen=True)
class Identity:
    """A key and its self-signed certificate, both PEM, as go-plugin's ``generateCert``
    makes them but on ``curve``."""

    certificate: bytes
    key: bytes

    @classmethod
    def generate(cls, curve: str = "secp256r1") -> Identity:
        """A fresh identity: CN and DNS name ``localhost``, a CA of its own, for client and
        server authentication, valid from 30 s ago for 30 years (go-plugin's template)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        curves: dict[str, tuple[type[ec.EllipticCurve], type[hashes.SHA256 | hashes.SHA384
                                                         | hashes.SHA512]]] = {
            "secp256r1": (ec.SECP256R1, hashes.SHA256),
            "secp384r1": (ec.SECP384R1, hashes.SHA384),
            "secp521r1": (ec.SECP521R1, hashes.SHA512)}
        if curve not in curves:
            raise InputError(f"curve {curve!r} is not one go-plugin's AutoMTLS could use",
                             fix=f"use one of {', '.join(curves)}")
        kind, digest = curves[curve]
        key = ec.generate_private_key(kind())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Plugin Lab"),
                          x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(secrets.randbits(127) + 1)
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(hours=262980))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=True, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                  ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(key, digest())
        )
        return cls(
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))

    def line_field(self) -> str:
        """The certificate as the handshake line's sixth field: DER in unpadded base64."""
        return base64.b64encode(_der(self.certificate)).decode().rstrip("=")


@dataclass(frozen=True)
class MutualTLS:
    """This side's identity and the one certificate it trusts: the other side's."""

    own: Identity
    peer: bytes  # PEM

    def server_credentials(self) -> grpc.ServerCredentials:
        """Serve TLS and require a client certificate signed by the peer's key."""
        return grpc.ssl_server_credentials([(self.own.key, self.own.certificate)],
                                           root_certificates=self.peer,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Connect with TLS, trust only the peer's certificate, present our own."""
        return grpc.ssl_channel_credentials(root_certificates=self.peer,
                                            private_key=self.own.key,
                                            certificate_chain=self.own.certificate)


def from_line_field(field: str) -> bytes:
    """The PEM certificate a handshake line's sixth field carries; InputError if it is not
    one."""
    import binascii

    try:
        der = base64.b64decode(field + "=" * (-len(field) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"the handshake line's certificate field is not base64: {exc}",
                         fix="the plugin must send its certificate's DER in base64") from exc
    return _pem(der)


def curve(certificate: bytes) -> str:
    """The curve of a PEM certificate's ECDSA key (``secp256r1``...), or its key type for
    another kind of key; InputError when it is not a certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = x509.load_pem_x509_certificate(certificate).public_key()
    except ValueError as exc:
        raise InputError(f"not a PEM certificate: {exc}",
                         fix="pass the certificate go-plugin's AutoMTLS sent") from exc
    return key.curve.name if isinstance(key, ec.EllipticCurvePublicKey) else type(key).__name__


def unusable(certificate: bytes) -> str:
    """Why grpcio cannot do TLS with the holder of ``certificate``, in words; empty when it
    can."""
    found = curve(certificate)
    if found in USABLE_CURVES:
        return ""
    if found == "secp521r1":
        return f"its certificate is on P-521 (secp521r1): {AUTOMTLS_WHY}"
    return (f"its certificate's key is {found}; labkit's AutoMTLS uses ECDSA on "
            f"{' or '.join(USABLE_CURVES)}")


def _der(pem: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _pem(der: bytes) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    except ValueError as exc:
        raise InputError(f"the handshake line's certificate is not a DER certificate: {exc}",
                         fix="the plugin must send its certificate's DER in base64") from exc
