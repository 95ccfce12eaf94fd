"""Checks before a long run, against the catalog Keystone handed out: the
region the user named exists, and every service endpoint answers, over TLS
with a certificate the user's CA trusts. A wrong OS_REGION_NAME, a service
that is down or a CA that is missing is named in one line at the start, not
found by discover-tempest-config's traceback, or by an hour of failures.
"""

import concurrent.futures
from typing import Dict, List, Optional
from urllib.parse import urlsplit

from tcup.contract import Cloud, Credentials
from tcup.launcher.errors import BadInput, Infrastructure

PROBE_TIMEOUT = (5, 15)  # connect, read


def interface_of(credentials: Credentials) -> str:
    """OS_INTERFACE as the catalog spells it (publicURL -> public)."""
    return (credentials.interface or "public").replace("URL", "")


def endpoints_to_use(credentials: Credentials, cloud: Cloud) -> Dict[str, str]:
    """{service type: URL} for the user's interface and region, as Tempest
    will pick them. Refuses a region the catalog does not have."""
    regions = sorted({endpoint.get("region") or "" for endpoint in cloud.endpoints} - {""})
    region = credentials.region_name
    if region and regions and region not in regions:
        raise BadInput(f"OS_REGION_NAME={region}: the catalog has no endpoint in that region "
                       f"(it has {', '.join(regions)}); fix OS_REGION_NAME")
    interface = interface_of(credentials)
    chosen = {}
    for endpoint in cloud.endpoints:
        if endpoint.get("interface") != interface or (region and endpoint.get("region") not in (region, None)):
            continue
        chosen.setdefault(endpoint["type"], endpoint["url"])
    return chosen


def probe(url: str, verify) -> Optional[Exception]:
    """None if anything answers at url (any HTTP status will do), else the error."""
    import requests

    try:
        requests.get(url, timeout=PROBE_TIMEOUT, verify=verify, allow_redirects=False)
        return None
    except requests.exceptions.RequestException as error:
        return error


def why_not(error: Exception) -> str:
    """Why an endpoint does not answer, in a few words."""
    import requests

    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(error, requests.exceptions.Timeout):
        return "timed out"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "connection refused" if "refused" in str(error).lower() else "connection failed"
    return type(error).__name__


def check(credentials: Credentials, cloud: Cloud, skip: List[str]) -> Dict[str, str]:
    """The endpoints a run will use, each answering; raises naming those
    that do not, unless the user chose to go on without them (skip)."""
    from tcup.launcher.cloud.identity import tls_failure, tls_verify, untrusted

    endpoints = endpoints_to_use(credentials, cloud)
    if "identity" in skip:
        raise BadInput("--skip-service identity: TCUP and Tempest need Keystone for everything; it cannot be skipped")
    unknown = sorted(set(skip) - set(endpoints))
    if unknown:
        raise BadInput(f"--skip-service {','.join(unknown)}: not in the catalog "
                       f"(it has {', '.join(sorted(endpoints))})")
    probed = {kind: url for kind, url in endpoints.items() if kind not in skip and kind != "identity"}
    with tls_verify(credentials) as verify, concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip(probed, pool.map(lambda url: probe(url, verify), probed.values())))
    # A CA problem is the user's to fix (OS_CACERT), not a service that is down.
    reasons = {kind: untrusted(error) for kind, error in answers.items() if error}
    distrusted = {kind: reason for kind, reason in reasons.items() if reason}
    if distrusted:
        first, *others = sorted(distrusted)
        # Its scheme, host and port: the certificate's place (the path may hold the project id).
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(probed[first]))
        raise tls_failure(origin, first, distrusted[first], credentials, also=others)
    dead = {kind: why_not(error) for kind, error in answers.items() if error}
    if dead:
        named = "; ".join(f"{kind} at {probed[kind]} ({reason})" for kind, reason in sorted(dead.items()))
        raise Infrastructure(f"the catalog names endpoints that do not answer: {named}; start or fix them, "
                             f"or go on without them: --skip-service {','.join(sorted(dead))}")
    return {kind: url for kind, url in endpoints.items() if kind not in skip}
