"""Checking the credentials against Keystone before any container starts.

A wrong password found here costs a second; found inside the container it
costs an image start and a confusing Tempest error.
"""

import hashlib
import re
import tempfile
from contextlib import contextmanager
from typing import List, Optional, Sequence
from urllib.parse import urlsplit

from tcup.contract import Cloud, Credentials
from tcup.launcher.errors import BadInput, Infrastructure

TIMEOUT = (10, 30)  # connect, read: an unreachable host must fail fast


def v3_root(auth_url: str) -> str:
    """Keystone's v3 API root for any form of OS_AUTH_URL people write."""
    root = re.sub(r"/v2\.0/?$", "", auth_url.rstrip("/"))
    return root if re.search(r"/v3$", root) else root + "/v3"


def token_request(credentials: Credentials, scoped: bool = True) -> dict:
    """The body of POST /v3/auth/tokens for these credentials."""
    if credentials.auth_type == "v3applicationcredential":
        app = {"secret": credentials.application_credential_secret}
        if credentials.application_credential_id:
            app["id"] = credentials.application_credential_id
        else:
            app["name"] = credentials.application_credential_name
            app["user"] = _user(credentials)
        return {"auth": {"identity": {"methods": ["application_credential"], "application_credential": app}}}
    user = _user(credentials)
    user["password"] = credentials.password
    auth = {"identity": {"methods": ["password"], "password": {"user": user}}}
    if scoped:
        if credentials.project_id:
            project = {"id": credentials.project_id}
        else:
            project = {"name": credentials.project_name, "domain": _domain(credentials, "project")}
        auth["scope"] = {"project": project}
    return {"auth": auth}


def _user(credentials: Credentials) -> dict:
    if credentials.user_id:
        return {"id": credentials.user_id}
    return {"name": credentials.username, "domain": _domain(credentials, "user")}


def _domain(credentials: Credentials, owner: str) -> dict:
    domain_id = getattr(credentials, f"{owner}_domain_id")
    return {"id": domain_id} if domain_id else {"name": getattr(credentials, f"{owner}_domain_name") or "Default"}


def catalog_hosts(catalog: list) -> List[str]:
    """Every host name the catalog's endpoints name, lower-case, sorted."""
    hosts = set()
    for service in catalog or []:
        for endpoint in (service.get("endpoints") or []) if isinstance(service, dict) else []:
            try:
                host = urlsplit(endpoint.get("url") or "").hostname
            except (AttributeError, ValueError):
                continue
            if host:
                hosts.add(host.lower())
    return sorted(hosts)


def cloud_facts(token: dict, auth_url: str) -> Cloud:
    """What the run needs from Keystone's token: the cpid, whether the user is
    an admin, and the ids and hosts the runner must mask (the user may have
    given only names)."""
    roles = {role.get("name", "").lower() for role in token.get("roles", [])}
    user, project = token.get("user") or {}, token.get("project") or {}
    domains = {(owner.get("domain") or {}).get("id") for owner in (user, project)}
    return Cloud(
        cpid=cpid_from_catalog(token.get("catalog"), auth_url),
        admin="admin" in roles,
        user_id=user.get("id"),
        project_id=project.get("id"),
        domain_ids=sorted(d for d in domains if d),
        hosts=catalog_hosts(token.get("catalog")),
        endpoints=catalog_endpoints(token.get("catalog")),
    )


def credentials_mode(cloud: Cloud) -> str:
    """How Tempest will get its accounts, as run.json's ``credentials`` says
    it: "dynamic" (an admin: Tempest makes them) or "preprovisioned" (a member)."""
    return "dynamic" if cloud.admin else "preprovisioned"


def catalog_endpoints(catalog: list) -> List[dict]:
    """The catalog's endpoints, flat: {"type", "interface", "region", "url"}."""
    found = []
    for service in catalog or []:
        if not isinstance(service, dict):
            continue
        for endpoint in service.get("endpoints") or []:
            if isinstance(endpoint, dict) and endpoint.get("url"):
                found.append({"type": service.get("type"), "interface": endpoint.get("interface"),
                              "region": endpoint.get("region") or endpoint.get("region_id"),
                              "url": endpoint["url"]})
    return found


def cpid_from_catalog(catalog: list, auth_url: str) -> str:
    """RefStack's cloud provider id, computed as RefStack clients do: the
    identity service's id in the catalog, else an MD5 of the auth URL."""
    for service in catalog or []:
        if service.get("type") == "identity" and service.get("id"):
            return service["id"]
    return hashlib.md5(auth_url.encode()).hexdigest()


@contextmanager
def tls_verify(credentials: Credentials):
    """What requests' ``verify`` needs for the user's cloud: the CA file of
    OS_CACERT, the system's CAs (True), or False when insecure."""
    if credentials.insecure:
        yield False
        return
    if not credentials.cacert:
        yield True
        return
    # A file without a name (O_TMPFILE, or unlinked at once), read through
    # /proc: even a SIGKILL of TCUP leaves nothing in $TMPDIR.
    with tempfile.TemporaryFile("w+", prefix="tcup-ca-", suffix=".pem") as file:
        file.write(credentials.cacert)
        file.flush()
        yield f"/proc/self/fd/{file.fileno()}"


def untrusted(error: Exception) -> Optional[str]:
    """Why a TLS handshake failed when the server's certificate was not
    trusted ("unable to get local issuer certificate"...), else None."""
    found = re.search(r"certificate verify failed: (.+?)\s*(?:\(_ssl\.c|'\)|$)", str(error))
    return found.group(1).rstrip(".") if found else None


def tls_failure(url: str, service: str, reason: str, credentials: Credentials,
                also: Sequence[str] = ()) -> BadInput:
    """One line for a certificate at ``url`` (the ``service`` endpoint) that
    is not trusted for ``reason``: what the user does about it. ``also``
    names more services whose certificates are not trusted either."""
    if "mismatch" in reason.lower():  # "Hostname mismatch", "IP address mismatch"
        hint = "reach it by a name its certificate names (no CA file can fix this)"
    elif credentials.cacert:
        hint = "the CA in OS_CACERT did not sign it: set OS_CACERT to your cloud's CA bundle (a PEM file)"
    else:
        hint = "set OS_CACERT to your cloud's CA bundle (a PEM file)"
    others = f", nor are those of {', '.join(also)}" if also else ""
    return BadInput(f"the certificate of {url} ({service}) is not trusted ({reason}){others}; {hint}")


class Rejected(BadInput):
    """Keystone said no to the secret itself (HTTP 401)."""


def check(credentials: Credentials) -> Cloud:
    """Ask Keystone for a token; return what the run needs to know, or raise
    one clear error saying why the credentials will not work."""
    import requests

    url = v3_root(credentials.auth_url) + "/auth/tokens"
    with tls_verify(credentials) as verify:
        def post(scoped=True):
            # No redirects: the body holds the password, and a redirect could
            # send it to another host, or over plain http.
            return requests.post(url, json=token_request(credentials, scoped), timeout=TIMEOUT, verify=verify,
                                 allow_redirects=False)

        try:
            answer = post()
            if answer.status_code == 401 and credentials.auth_type == "password":
                # Keystone says 401 for both a bad password and a bad project;
                # an unscoped token tells the two apart.
                if post(scoped=False).status_code == 201:
                    raise BadInput(
                        "Keystone accepted the user but not the project: check OS_PROJECT_NAME/OS_PROJECT_ID "
                        "and OS_PROJECT_DOMAIN_NAME (the user needs a role on that project)"
                    )
        except requests.exceptions.SSLError as error:
            if "WRONG_VERSION_NUMBER" in str(error) or "wrong version number" in str(error):
                # An https:// URL whose port answers in plain HTTP: no CA would help.
                raise BadInput(
                    f"{credentials.auth_url} does not speak TLS on that port (it answers in plain HTTP); "
                    "use http:// in OS_AUTH_URL, or Keystone's TLS port"
                )
            reason = untrusted(error)
            if reason:
                raise tls_failure(credentials.auth_url, "identity", reason, credentials)
            raise BadInput(f"the TLS handshake with Keystone at {credentials.auth_url} failed "
                           f"({type(error).__name__}); check OS_AUTH_URL")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
            reason = "timed out" if isinstance(error, requests.exceptions.Timeout) else "connection failed"
            raise Infrastructure(
                f"cannot reach Keystone at {credentials.auth_url} ({reason}); check OS_AUTH_URL, your network and proxy"
            )
        except requests.exceptions.RequestException as error:
            raise BadInput(f"cannot ask Keystone at {credentials.auth_url} for a token ({type(error).__name__}); check OS_AUTH_URL")
        except UnicodeError:
            # requests sends proxy credentials as Latin-1; its error would quote the character.
            raise BadInput("a user name or password in https_proxy/http_proxy has characters HTTP cannot carry; "
                           "percent-encode them in the proxy URL (e.g. %C3%A9 for é)")
    return _cloud_from(answer, credentials)


def _cloud_from(answer, credentials: Credentials) -> Cloud:
    """The cloud Keystone's answer to the token request describes, or one
    clear error saying why it refused."""
    if 300 <= answer.status_code < 400:
        where = answer.headers.get("Location", "elsewhere")
        raise BadInput(f"Keystone at {credentials.auth_url} redirects (HTTP {answer.status_code} to {where:.200}); "
                       "TCUP does not send the password after a redirect: set OS_AUTH_URL to Keystone's own URL")
    if answer.status_code == 401:
        what = "application credential" if credentials.auth_type == "v3applicationcredential" else "user name or password"
        raise Rejected(f"Keystone rejected the {what} (HTTP 401); check your credentials")
    if answer.status_code == 404:
        raise BadInput(f"no Keystone v3 API answers at {credentials.auth_url} (HTTP 404); check OS_AUTH_URL")
    if answer.status_code != 201:
        raise BadInput(f"Keystone refused the token request (HTTP {answer.status_code}); check your credentials and OS_AUTH_URL")
    try:
        token = answer.json()["token"]
    except (ValueError, KeyError):
        raise BadInput(f"{credentials.auth_url} answered, but not as Keystone does; check OS_AUTH_URL")
    if not isinstance(token, dict) or "project" not in token:
        raise BadInput("the token Keystone issued is not scoped to a project; set OS_PROJECT_NAME or OS_PROJECT_ID")
    return cloud_facts(token, credentials.auth_url)
