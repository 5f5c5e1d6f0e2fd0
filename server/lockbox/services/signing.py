"""Ed25519 keys for signed decisions (LOCKBOX_SIGNING_KEY, `lockbox keys generate`).

A signature is standard base64 of Ed25519 over the UTF-8 bytes of the
canonical JSON of a decision's payload (`domain.evidence.signed_bytes`).
A key's id is the first 32 hex digits of the SHA-256 of its public key in
DER SubjectPublicKeyInfo form, so anyone holding the public key derives it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockbox.domain.evidence import signed_bytes


class KeyFileError(ValueError):
    """A key file that cannot be used, said in one line."""


def key_id_of(public: Ed25519PublicKey) -> str:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Verifier:
    public: Ed25519PublicKey
    key_id: str

    @property
    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verifies(self, payload: Any, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
            self.public.verify(raw, signed_bytes(payload))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    private: Ed25519PrivateKey
    verifier: Verifier

    @property
    def key_id(self) -> str:
        return self.verifier.key_id

    def sign(self, payload: Any) -> str:
        return base64.b64encode(self.private.sign(signed_bytes(payload))).decode("ascii")


def generate(path: str) -> Signer:
    """A new private key written to `path` (PEM, PKCS#8, mode 0600; an existing
    file is never overwritten)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; not overwriting a key") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.chmod(path, 0o600)  # whatever the umask
    return _signer(private)


def _signer(private: Ed25519PrivateKey) -> Signer:
    public = private.public_key()
    return Signer(private, Verifier(public, key_id_of(public)))


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_signer(path: str) -> Signer:
    """The private key at `path` (LOCKBOX_SIGNING_KEY)."""
    try:
        private = serialization.load_pem_private_key(_read(path, "signing key"), password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return _signer(private)


def load_verifier(path: str) -> Verifier:
    """A public key (PEM SubjectPublicKeyInfo, as the server serves it)."""
    try:
        public = serialization.load_pem_public_key(_read(path, "public key"))
    except (ValueError, TypeError):
        raise KeyFileError(f"{path} is not a PEM public key") from None
    if not isinstance(public, Ed25519PublicKey):
        raise KeyFileError(f"{path} is not an Ed25519 public key")
    return Verifier(public, key_id_of(public))
