"""Signing uploads with the user's RSA key, the way a RefStack server checks them.

RefStack ties a signed upload to the account that registered the public key:
it reads ``X-Public-Key`` (an OpenSSH ``ssh-rsa`` line), looks the key up, and
checks ``X-Signature`` (hex, RSA PKCS#1 v1.5 over SHA-256) against the exact
bytes of the request body. Registering a key on the server takes the same
public line plus a signature over the bytes ``signature``.

``cryptography`` is imported only inside these functions: an unsigned upload,
and ``tcup --help``, must not pay for it (or need it).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Tuple

if TYPE_CHECKING:  # for readers and type checkers only; never imported at run time
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

# What the server signs over when a key is registered (RefStack's PubkeyValidator).
REGISTRATION_DATA = b"signature"
# The comment on the public key line; the server matches on the key itself only.
KEY_COMMENT = "tcup"
# A 16384-bit RSA key in PEM is about 13 KiB; anything far larger is the wrong file.
MAX_KEY_BYTES = 1 << 20

_OPENSSH_PRIVATE = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_PUBLIC_MARKERS = (b"ssh-", b"ecdsa-", b"---- BEGIN SSH2 PUBLIC KEY", b"-----BEGIN PUBLIC KEY", b"-----BEGIN RSA PUBLIC KEY")


class SigningError(Exception):
    """A key that cannot sign; ``str(error)`` is one line naming the file and what to do."""


def load_key(path: Path, passphrase: Optional[Callable[[], str]]) -> "RSAPrivateKey":
    """The RSA private key in ``path`` (PEM or OpenSSH), asking ``passphrase()`` only if it is encrypted."""
    _require_cryptography()
    data = _read_key_file(path)
    if data.lstrip().startswith(_PUBLIC_MARKERS):
        raise SigningError(f"{path} is a public key; --sign-key needs the private key (the file without .pub)")
    # First without a password: that is how cryptography tells us the key is encrypted.
    try:
        key = _parse(path, data, None)
    except TypeError:
        key = _parse_encrypted(path, data, passphrase)
    return _require_rsa(path, key)


def public_key_line(key, comment: str = KEY_COMMENT) -> str:
    """The OpenSSH public key line for ``key``: ``ssh-rsa AAAA... comment``."""
    from cryptography.hazmat.primitives import serialization

    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{blob.decode('ascii')} {comment}".strip()


def sign(key, data: bytes) -> str:
    """Hex of the RSA PKCS#1 v1.5 SHA-256 signature over ``data``, as X-Signature carries it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return key.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


def registration(key) -> Tuple[str, str]:
    """(public key line, self-signature): what a RefStack server asks for to register the key."""
    return public_key_line(key), sign(key, REGISTRATION_DATA)


def _require_cryptography() -> None:
    """cryptography with its compiled parts, or one line saying which Python can sign."""
    try:
        from cryptography.hazmat.primitives import serialization  # noqa: F401 (loads _rust and _cffi_backend)
    except ImportError as error:
        from tcup.launcher.entry import missing_part

        raise SigningError(missing_part("signing (--sign-key)", "cryptography", error)) from None


def _read_key_file(path: Path) -> bytes:
    """The bytes of the key file, or a SigningError saying why it cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_BYTES + 1)
    except FileNotFoundError:
        raise SigningError(f"key file {path} does not exist; give the path of your RSA private key") from None
    except OSError as error:
        raise SigningError(f"cannot read key file {path}: {error.strerror or error}") from None
    if len(data) > MAX_KEY_BYTES:
        raise SigningError(f"{path} is too large to be a private key")
    return data


def _parse(path: Path, data: bytes, password: Optional[bytes]):
    """The private key object; TypeError when a password is missing; SigningError when the file is no key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        if data.lstrip().startswith(_OPENSSH_PRIVATE):
            return serialization.load_ssh_private_key(data, password)
        return serialization.load_pem_private_key(data, password)
    except UnsupportedAlgorithm as error:
        # cryptography decrypts OpenSSH-format keys with the optional bcrypt package.
        if "bcrypt" in str(error):
            raise SigningError(
                f"key {path} is an encrypted OpenSSH key, which needs the Python package bcrypt "
                f"(pip install bcrypt); or convert it: ssh-keygen -p -m PEM -f {path}"
            ) from None
        raise SigningError(f"key {path} uses an unsupported algorithm; RefStack needs an RSA key") from None
    except ValueError:
        if password is not None:
            raise  # the caller knows a password was tried and says so
        raise SigningError(f"{path} is not a PEM or OpenSSH private key") from None


def _parse_encrypted(path: Path, data: bytes, passphrase: Optional[Callable[[], str]]):
    """The key decrypted with the passphrase the callback gives, or one line saying why not."""
    if passphrase is None:
        raise SigningError(f"key {path} is encrypted and no passphrase can be asked (no terminal)")
    secret = passphrase()
    if not secret:
        raise SigningError(f"key {path} is encrypted and no passphrase was given")
    try:
        return _parse(path, data, secret.encode("utf-8"))
    except (ValueError, TypeError):
        # Both formats report a wrong passphrase as corrupt data; the file parsed fine without one.
        raise SigningError(f"wrong passphrase for key {path}") from None


def _require_rsa(path: Path, key) -> "RSAPrivateKey":
    """``key`` if it is RSA; RefStack's server verifies RSA signatures only."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.replace("PrivateKey", "").replace("EllipticCurve", "EC") or "non-RSA"
        article = "an" if kind[0] in "AEIOU" else "a"
        raise SigningError(f"key {path} is {article} {kind} key; RefStack verifies RSA signatures only (ssh-keygen -t rsa)")
    return key
