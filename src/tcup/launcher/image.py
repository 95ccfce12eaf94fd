"""The TCUP image: its build context, its tag, and building it when missing.

The tag is a hash of the build context, so a checkout and a pyz built from
the same commit name the same image, and whichever runs second reuses it.
"""

import hashlib
import io
import sys
import tarfile
from pathlib import Path
from typing import Dict, Optional

import tcup
from tcup.launcher.errors import BadInput, Infrastructure

REPOSITORY = "tcup"
PACKAGE = Path(tcup.__file__).resolve().parent


def image_dir() -> Path:
    """image/ of a checkout, or its copy that build_zipapp.py packs into the pyz."""
    packed = PACKAGE / "_image"
    return packed if packed.is_dir() else PACKAGE.parent.parent / "image"


def context_files(ca_cert: Optional[Path] = None) -> Dict[str, bytes]:
    """Every file of the build context, by its path in the context.

    Only what the image needs: the Dockerfile and lock file, the runner side of
    the package (never the launcher), the shipped guideline lists, and the
    user's extra CA certificates.
    """
    files = {}
    for name in ("Dockerfile", "requirements.txt"):
        path = image_dir() / name
        if not path.is_file():
            raise Infrastructure(f"the image build context is incomplete: {path} is missing; reinstall TCUP")
        files[name] = path.read_bytes()
    for pattern in ("__init__.py", "contract.py", "runner/*.py", "guidelines/*.json"):
        for path in sorted(PACKAGE.glob(pattern)):
            files[f"tcup/{path.relative_to(PACKAGE).as_posix()}"] = path.read_bytes()
    if ca_cert is not None:
        try:
            pem = Path(ca_cert).read_bytes()
        except OSError as error:
            raise BadInput(f"--ca-cert {ca_cert} cannot be read ({error.strerror}); give a PEM file")
        if b"BEGIN CERTIFICATE" not in pem:
            raise BadInput(f"--ca-cert {ca_cert} holds no PEM certificate; give a PEM file")
        files["ca/extra.crt"] = pem
    return files


def context_tar(files: Dict[str, bytes]) -> bytes:
    """A tar of the context that depends on the files' contents alone
    (sorted, fixed times and owners), so its hash can name the image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = {"ca"} | {str(Path(n).parent) for n in files if "/" in n}
        for name in sorted(directories):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(files[name]), 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def tag_for(context: bytes) -> str:
    return f"{REPOSITORY}:{hashlib.sha256(context).hexdigest()[:16]}"


class Image:
    """The image a run uses: found by its tag, or built from the context."""

    def __init__(self, ca_cert: Optional[Path] = None):
        self.context = context_tar(context_files(ca_cert))
        self.tag = tag_for(self.context)

    def ensure(self, engine, *, rebuild: bool = False, proxies: Optional[Dict[str, str]] = None, out=sys.stderr) -> str:
        """Build the image unless the engine already has it; return its tag."""
        if not rebuild and engine.has_image(self.tag):
            return self.tag
        print(f"tcup: building image {self.tag} (first run only; about a minute)", file=out, flush=True)
        engine.build(self.context, self.tag, proxies or {}, out, fresh=rebuild)
        return self.tag
