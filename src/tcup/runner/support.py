"""What a support ticket needs from inside the container, made safe to hand
out: tempest.conf with every secret, name, id and host replaced by a
placeholder (tempest.sanitised.conf), and the versions of what ran
(versions.json). `tcup bundle` packs both with the results.

The real tempest.conf stays on the tmpfs. Its copy is rebuilt line by line:
an option whose name says it holds a secret or an identifier loses its value
whatever it is; every other value loses its URLs' hosts, IP addresses,
UUID-like ids and e-mail addresses, and then passes through the run's mask
(the user's own names, ids and hosts in any spelling). Comments are dropped:
nothing is kept that no rule has looked at.
"""

import json
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional

from tcup import contract, private_files
from tcup.masking import Mask

SECRET = "<secret>"
NAME = "<name>"
ID = "<id>"
HOST = "<host>"
# Option names (the key alone, lower case) whose value is a secret ...
SECRET_KEY = re.compile(r"password|secret|token|credential|passphrase|(^|_)key$|private")
# ... or names a user, project, domain, region, network or other thing of the cloud's ...
NAME_KEY = re.compile(r"user|tenant|project|domain|region|(^|_)name$|_names$|email|account|owner")
# ... or is the id of one (image_ref, flavor_ref, public_network_id, ...).
ID_KEY = re.compile(r"(^|_)(id|ids|ref|ref_alt|uuid)$")
BOOLEAN = {"", "true", "false", "none"}
# Keystone's built-in domain: every cloud has it, and it says which domain was used.
BUILT_IN = {"default"}
# Options that merely point into the container's tmpfs or say which role or
# file Tempest uses: kept whole, whatever their name says.
KEEP_KEY = re.compile(r"_roles?$|^roles?$|_file$|_path$|_dir$|^catalog_type$|^endpoint_type$|_endpoint_type$")

URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s?#'\"<>]+)")
IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
IPV6 = re.compile(r"(?i)(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])")
UUIDISH = re.compile(r"(?i)\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
OPTION = re.compile(r"^(?P<key>[^=:\s][^=:]*?)\s*(?P<sep>[=:])\s*(?P<value>.*)$")

HEADER = """\
# tempest.conf of this run, as discover-tempest-config and TCUP wrote it, with
# every secret, user, project, domain, region, id and host replaced by a
# placeholder (<secret>, <name>, <id>, <host>). Comments are left out.
"""


def sanitised_conf(text: str, mask: Mask) -> str:
    """tempest.conf's text without secrets or identifiers, in its order."""
    lines = [HEADER]
    key, plain_section = None, True
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            key = None
            # Section and option names are Tempest's own (like test names), not
            # masked: a password "admin" must not turn admin_username into ***_username.
            plain_section = bool(PLAIN_NAME.match(stripped[1:-1]))
            if plain_section:
                lines.append(("\n" if len(lines) > 1 else "") + stripped)
            continue
        if not plain_section:
            continue  # its options would read as the previous section's
        if raw[:1].isspace() and key is not None:  # a continuation line of the last value
            lines.append("    " + sanitised_value(key, stripped, mask))
            continue
        option = OPTION.match(stripped)
        if option is None or not PLAIN_NAME.match(option.group("key").strip()):
            key = None
            continue  # not tempest.conf syntax: nothing a rule has checked
        key = option.group("key").strip()
        lines.append(f"{key} {option.group('sep')} {sanitised_value(key, option.group('value'), mask)}")
    return "\n".join(lines) + "\n"


def sanitised_value(key: str, value: str, mask: Mask) -> str:
    """One option's value without anything secret or identifying."""
    name, lowered = key.strip().lower(), value.strip().lower()
    if lowered in BOOLEAN or lowered in BUILT_IN:
        return mask.text(value)  # the mask still hides a password such as "true"
    if SECRET_KEY.search(name):
        return SECRET
    if not KEEP_KEY.search(name):
        if ID_KEY.search(name):
            return ID
        if NAME_KEY.search(name):
            return NAME
    value = mask.text(value)
    value = URL.sub(lambda match: match.group(1) + HOST, value)
    value = EMAIL.sub("<email>", value)
    value = UUIDISH.sub(ID, value)
    value = IPV4.sub(HOST, value)
    return IPV6.sub(HOST, value)


def versions(tempest_version: str) -> Dict[str, Optional[str]]:
    """What ran, inside the image."""
    found = {"tcup_runner": None, "tempest": tempest_version, "python_tempestconf": None,
             "python": platform.python_version(), "image_os": None}
    try:
        found["python_tempestconf"] = metadata.version("python-tempestconf")
    except metadata.PackageNotFoundError:
        pass
    import tcup

    found["tcup_runner"] = tcup.__version__
    try:
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        found["image_os"] = release.get("PRETTY_NAME", "").strip('"') or None
    except OSError:
        pass
    return found


def write(results_dir: Path, conf: Path, mask: Mask, tempest_version: str) -> None:
    """versions.json, and tempest.sanitised.conf when tempest.conf exists."""
    private_files.write_atomically(results_dir / contract.VERSIONS_FILE,
                                   (json.dumps(versions(tempest_version), indent=2) + "\n").encode())
    if conf.is_file():
        text = conf.read_text(errors="replace")
        private_files.write_atomically(results_dir / contract.TEMPEST_CONF_FILE,
                                       sanitised_conf(text, mask).encode())
