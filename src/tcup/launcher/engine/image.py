"""The TCUP image: its build context, its tag, and building it when missing.

The tag is a hash of the build context, so a checkout and a pyz built from
the same commit name the same image, and whichever runs second reuses it.
"""

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import secrets
import sys
import tarfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import tcup
from tcup import private_files
from tcup.launcher.engine.connection import short_name
from tcup.launcher.errors import BadInput, Infrastructure, printable, proxy_mask
from tcup.masking import Mask
from tcup.private_files import create_private

REPOSITORY = "tcup"
# The sha256 of the extra CA certificates an image was built with ("none").
CA_LABEL = "org.openstack.tcup.ca-certificates"
PACKAGE = Path(tcup.__file__).resolve().parent


def image_dir() -> Path:
    """The build context's directory, as package data (tcup/image, in a
    checkout a link to the repository's image/), found the same way in a
    checkout, an install and the pyz."""
    from importlib import resources

    return Path(str(resources.files("tcup") / "image"))


def context_files() -> Dict[str, bytes]:
    """Every file of the build context but the CA certificates, by its path
    in the context: the Dockerfile and lock file, the runner side of the
    package (never the launcher) and the shipped guideline lists."""
    files = {}
    for name in ("Dockerfile", "requirements.txt"):
        path = image_dir() / name
        if not path.is_file():
            raise Infrastructure(f"the image build context is incomplete: {path} is missing; reinstall TCUP")
        files[name] = path.read_bytes()
    for pattern in ("__init__.py", "contract.py", "masking.py", "private_files.py", "testids.py", "junit.py",
                    "runner/*.py", "guidelines/*.json"):
        for path in sorted(PACKAGE.glob(pattern)):
            files[f"tcup/{path.relative_to(PACKAGE).as_posix()}"] = path.read_bytes()
    return files


# The host's proxy settings handed to the build and the runner (Docker's build-arg names, upper case).
BUILD_PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy")


def host_proxies() -> dict:
    """The host's proxy settings (either case), under Docker's build-arg names."""
    found = {}
    for name in BUILD_PROXY_VARIABLES:
        value = os.environ.get(name) or os.environ.get(name.upper())
        if value:
            found[name.upper()] = value
    return found


CERTIFICATE_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def read_ca(path: Path) -> bytes:
    """The X.509 certificates of a PEM file, each parsed and written anew,
    and nothing else from it.

    A proxy's CA file often holds the CA's private key too (mitmproxy's
    does); that key must never reach an image, where anyone who can read
    the image could impersonate the proxy. So a file that mentions a private
    key anywhere is refused, whatever its blocks look like (a certificate
    block without its END line would swallow the key after it), and what
    goes into the image is what cryptography parsed, not the file's text."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise BadInput(f"--ca-cert {path} cannot be read ({error.strerror}); give a PEM file")
    if b"PRIVATE KEY" in pem:
        raise BadInput(
            f"--ca-cert {path} holds a private key; give only the CA certificate "
            f"(e.g. `openssl x509 -in {path} -out ca.crt`, then --ca-cert ca.crt)"
        )
    blocks = CERTIFICATE_BLOCK.findall(pem)
    certificates = []
    with warnings.catch_warnings():
        # A bundle's old certificates draw deprecation warnings (a serial of 0); they are still read.
        warnings.simplefilter("ignore")
        for block in blocks:
            try:
                certificates.append(x509.load_pem_x509_certificate(block).public_bytes(Encoding.PEM))
            except ValueError:
                continue  # not a certificate, whatever its header says: it stays out of the image
    if not certificates:
        raise BadInput(f"--ca-cert {path} holds no X.509 certificate in PEM form; give the CA's PEM file")
    if len(certificates) < len(blocks):
        print(f"tcup: warning: --ca-cert {path}: {len(blocks) - len(certificates)} of {len(blocks)} certificate "
              "blocks are not X.509 certificates and are left out", file=sys.stderr, flush=True)
    return b"".join(certificates)


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


def tag_of_this_version() -> str:
    """The tag of the image this TCUP drives, found without an engine: what
    `--version` and a bundle name."""
    return tag_for(context_tar(context_files()))


class Image:
    """The image a run uses: found by its tag, or built from the context.

    The tag names what TCUP runs (Dockerfile, lock, runner), not the CA
    certificates it was built with: they are a way to reach PyPI from
    behind a proxy, so an image built (or loaded) with any CA serves a run
    that names none. A CA that differs from the image's is a reason to
    build, and the build says so."""

    def __init__(self, ca_cert: Optional[Path] = None):
        self.files = context_files()
        self.tag = tag_for(context_tar(self.files))
        self.ca = read_ca(ca_cert) if ca_cert is not None else None

    @property
    def ca_digest(self) -> str:
        return hashlib.sha256(self.ca).hexdigest() if self.ca else "none"

    def build_reason(self, engine, rebuild: bool = False) -> Optional[str]:
        """Why the image must be built now, or None when the one on hand serves."""
        if rebuild:
            return "--rebuild"
        labels = engine.image_labels(self.tag)
        if labels is None:
            return "no image for this TCUP version yet; first run only, about a minute"
        if self.ca is not None and labels.get(CA_LABEL) != self.ca_digest:
            return "the image on hand was built with other CA certificates than --ca-cert/TCUP_CA_CERT"
        return None

    def ensure(self, engine, *, rebuild: bool = False, proxies: Optional[Dict[str, str]] = None, out=sys.stderr) -> str:
        """Build the image unless the engine already has a fitting one; return its tag."""
        reason = self.build_reason(engine, rebuild)
        if reason is None:
            return self.tag
        print(f"tcup: building image {self.tag} ({reason})", file=out, flush=True)
        files = dict(self.files, **({"ca/extra.crt": self.ca} if self.ca else {}))
        with BuildLog(self.tag, out, proxy_mask(proxies or {})) as log:
            engine.build(context_tar(files), self.tag, proxies or {}, log.line, fresh=rebuild,
                         labels={CA_LABEL: self.ca_digest})
        return self.tag

    def prune(self, engine) -> "Pruned":
        """Remove TCUP's images of other versions (one piles up per version);
        this version's, and any a container still uses, stay."""
        before = engine.layers_size()
        removed, in_use = [], []
        for tag in engine.tagged_images(REPOSITORY):
            if short_name(tag) != self.tag:
                (removed if engine.remove_tag(tag) else in_use).append(short_name(tag))
        return Pruned(removed, in_use, max(0, before - engine.layers_size()))

    def save(self, engine, path: Path) -> None:
        """Write the image, with every layer it stands on, to one tar file
        (gzip-compressed when its name ends in .gz; both engines load either),
        through the private writer: written aside, owner-only, never through
        a link, and renamed into place only when whole."""
        import gzip

        path = Path(path)
        try:
            with private_files.replacing(path) as out:
                with (gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) if path.suffix == ".gz"
                      else contextlib.nullcontext(out)) as file:
                    for chunk in engine.save_image(self.tag):
                        file.write(chunk)
        except OSError as error:
            raise BadInput(f"cannot write {path} ({error.strerror}); choose a writable place with room for ~350 MB")

    def load(self, engine, path: Path) -> None:
        """Load a file `tcup image --save` wrote. Its manifest is read first:
        an archive that names anything but this TCUP's image (another tag, a
        doctored base image that later builds would stand on) is refused,
        and nothing of it is loaded."""
        try:
            with open(path, "rb") as file:
                names = archive_names(file, path)
                if len(names) != 1 or set(names[0]) != {self.tag}:
                    found = ", ".join(sorted({tag for tags in names for tag in tags})) or "no tagged image"
                    raise BadInput(f"{path} holds {found}, not only {self.tag}, the image this TCUP drives; nothing "
                                   "was loaded; save the image with the same TCUP version (`tcup --version` shows "
                                   "its image)")
                file.seek(0)
                engine.load_image(file)
        except OSError as error:
            raise BadInput(f"cannot read {path} ({error.strerror}); give the file `tcup image --save` wrote")


# The files of a `docker save` archive that name images, and the most of each that is read.
MANIFEST, REPOSITORIES, OCI_INDEX = "manifest.json", "repositories", "index.json"
NAMING_BYTES = 1024 * 1024
# Where an OCI index names an image (containerd's, and the OCI reference name).
OCI_NAMES = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


def archive_names(file, path) -> List[List[str]]:
    """The tags of each image a `docker save` archive (plain or gzip) would
    load, from every file an engine takes names from: manifest.json's
    RepoTags (one list per image); the legacy repositories file's and an OCI
    index's names count as one more image each when they name anything else.
    BadInput when it is no such archive."""
    found = {}
    try:
        with tarfile.open(fileobj=file, mode="r|*") as tar:
            for member in tar:
                # As an engine unpacks it: the last of two members of one name wins.
                name = posixpath.normpath(member.name).lstrip("/")
                if name not in (MANIFEST, REPOSITORIES, OCI_INDEX):
                    continue
                if not member.isfile() or member.size > NAMING_BYTES:
                    raise BadInput(f"{path}: its {name} is not a small regular file; give the file "
                                   "`tcup image --save` wrote")
                found[name] = json.loads(tar.extractfile(member).read())
    except (tarfile.TarError, EOFError, ValueError, zlib.error) as error:
        raise BadInput(f"{path} is not an image archive ({type(error).__name__}); give the file "
                       "`tcup image --save` wrote") from None
    manifest = found.get(MANIFEST)
    if not isinstance(manifest, list):
        raise BadInput(f"{path} has no {MANIFEST} (not a `docker save` archive); give the file "
                       "`tcup image --save` wrote")
    images = [[short_name(str(tag)) for tag in entry.get("RepoTags") or []] if isinstance(entry, dict) else ["?"]
              for entry in manifest]
    named = {tag for tags in images for tag in tags}
    for others in (_legacy_names(found.get(REPOSITORIES)), _index_names(found.get(OCI_INDEX))):
        others = {short_name(tag) for tag in others}
        if others - named:
            images.append(sorted(others - named))
    return images


def _legacy_names(repositories) -> set:
    """The repositories file's names: {"repository": {"tag": layer}}."""
    if repositories is None:
        return set()
    if not isinstance(repositories, dict):
        return {"?"}
    return {f"{repository}:{tag}" if isinstance(tags, dict) else "?"
            for repository, tags in repositories.items() for tag in (tags if isinstance(tags, dict) else [None])}


def _index_names(index) -> set:
    """An OCI index's names: each manifest's annotations."""
    if index is None:
        return set()
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        return {"?"}
    # The OCI reference name may be the tag alone ("1.0"): only a full name (with its ":") names an image.
    return {str(entry["annotations"][key]) for entry in manifests
            if isinstance(entry, dict) and isinstance(entry.get("annotations"), dict)
            for key in OCI_NAMES if ":" in str(entry["annotations"].get(key) or "")}


class Pruned(NamedTuple):
    """What `tcup image --prune` did: tags removed, tags kept for a container, bytes freed."""

    removed: List[str]
    in_use: List[str]
    freed: int

    def report(self, current: str) -> str:
        lines = [f"removed {len(self.removed)} old TCUP image{'s' if len(self.removed) != 1 else ''}"
                 + (f" ({', '.join(self.removed)})" if self.removed else "")
                 + f", freed {self.freed / 1e6:.1f} MB; kept {current}, this version's"]
        lines += [f"kept {tag}: a container still uses it; remove the container, then prune again" for tag in self.in_use]
        return "\n".join(lines)


STEP = re.compile(r"^(?:Step|STEP) (\d+)/(\d+) ?: ?(.*)$")
# What a Dockerfile step does, in words, by what it runs (first match wins).
STEP_WORDS = (
    ("apt-get", "installing Debian's python3"),
    ("update-ca-certificates", "adding the CA certificates"),
    ("pip install", "installing Tempest and its dependencies"),
    ("COPY tcup/", "adding the runner"),
    ("COPY requirements", "adding the lock file"),
    ("COPY ca/", "adding the CA certificates"),
    ("FROM ", "starting from Debian"),
    ("ENV ", "setting the environment"),
    ("profile.d", "setting the debug shell's PATH"),
    ("tcup-hooks.pth", "hooking TCUP's Tempest patches in"),
    ("LABEL ", "labelling the image"),
)
# Docker's and Podman's words for a failed RUN step, which quote the whole command.
FAILED_COMMAND = re.compile(r"The command '.*' returned a non-zero code: (\d+)|building at STEP \".*\": "
                            r"while running runtime: exit status (\d+)", re.S)
# What a failed build's log says, and what to tell the user (first match wins).
HINTS = (
    (("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
     "behind a TLS-inspecting proxy? give its CA with --ca-cert FILE (or TCUP_CA_CERT)"),
    (("No space left on device",), "the container engine's disk is full; free space (e.g. `docker system prune`)"),
    (("Temporary failure in name resolution", "Could not resolve", "Network is unreachable",
      "Failed to establish a new connection", "Could not find a version that satisfies", "ProxyError"),
     "the build could not reach Debian's mirror or PyPI; behind a proxy, set HTTPS_PROXY/HTTP_PROXY; "
     "with no network at all, build on another machine and carry it over (tcup image --save/--load)"),
)
RELEVANT = re.compile(r"error|fail|denied|refused|unable|cannot|could not", re.I)


def log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tcup"


# Build logs kept in the cache, newest first; each build writes its own.
KEPT_BUILD_LOGS = 10


def forget_old_logs(directory: Path, keep: int = KEPT_BUILD_LOGS) -> None:
    """Remove all but the newest ``keep`` build logs in ``directory``."""
    def age(path: Path) -> float:
        try:
            return path.lstat().st_mtime
        except OSError:
            return 0.0

    for old in sorted(directory.glob("build-*.log"), key=age, reverse=True)[keep:]:
        try:
            old.unlink()
        except OSError:
            pass  # another build removed it first


class BuildLog:
    """What a user sees of an image build: on a terminal one line, rewritten
    in place (the step, what it does, the time so far); in a log, a line per
    step. Every line, masked, goes to a new file in the cache (one per build:
    two builds of one tag never share a file), named on failure with the
    last relevant lines and a hint from what failed."""

    def __init__(self, tag: str, out=sys.stderr, mask: Optional[Mask] = None):
        self.out = out
        self.live = out.isatty()
        self.mask = mask or Mask()
        # When, and a random part: builds in one second (or one process) differ.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        self.path = log_dir() / f"build-{tag.split(':')[-1]}-{stamp}.log"
        self.started = time.monotonic()
        self.step = ""
        self.shown = ""
        self.tail = []
        self.file = None

    def __enter__(self) -> "BuildLog":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = create_private(self.path)
            forget_old_logs(self.path.parent)
        except OSError:
            self.path = None  # no cache to write to: the build still runs, its log is only shown in part
        return self

    def line(self, text: str) -> None:
        text = self.mask.text(printable(text.rstrip()))
        if self.file is not None:
            self.file.write(text.encode("utf-8", "replace") + b"\n")
        self.tail = (self.tail + [text])[-200:]
        step = STEP.match(text.strip())
        if step:
            number, total, instruction = step.groups()
            words = next((w for key, w in STEP_WORDS if key in instruction), instruction.split(" ", 1)[0].lower())
            self.step = f"step {number}/{total}, {words}"
            if not self.live:
                print(f"tcup: building image: {self.step}", file=self.out, flush=True)
        if self.live and self.step:
            shown = f"tcup: building image: {self.step} ({int(time.monotonic() - self.started)} s)"
            if shown != self.shown:  # rewritten when it changes, not for every line of the log
                self.out.write(f"\r\033[K{shown}")
                self.out.flush()
                self.shown = shown

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self.file is not None:
            self.file.close()
        if self.live:
            self.out.write("\r\033[K")
        if exc_type is None:
            print(f"tcup: image built in {int(time.monotonic() - self.started)} s", file=self.out, flush=True)
            return
        if isinstance(exc, Infrastructure):
            relevant = [line for line in self.tail if RELEVANT.search(line)][-5:] or self.tail[-5:]
            if relevant:
                print("tcup: the build log ends:\n" + "\n".join("    " + line[:300] for line in relevant),
                      file=self.out, flush=True)
            text = "\n".join(self.tail) + "\n" + str(exc)
            hint = next((h for needles, h in HINTS if any(n in text for n in needles)), None)
            where = f" at {self.step}" if self.step else ""
            message = FAILED_COMMAND.sub(lambda m: f"the step exited with code {m.group(1) or m.group(2)}", exc.args[0])
            message = self.mask.text(message)
            exc.args = (f"{message.replace('image build failed', 'image build failed' + where, 1)}"
                        + (f"; {hint}" if hint else "") + (f"; full log: {self.path}" if self.path else ""),)
