"""Checks before a long run, against the catalog Keystone handed out: the
region the user named exists, and every service endpoint answers. A wrong
OS_REGION_NAME or a service that is down is named in one line at the start,
not found by discover-tempest-config's traceback, or by an hour of failures.
"""

import concurrent.futures
from typing import Dict, List, Optional

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


def probe(url: str, verify) -> Optional[str]:
    """None if anything answers at url (any HTTP status will do), else why not."""
    import requests

    try:
        requests.get(url, timeout=PROBE_TIMEOUT, verify=verify, allow_redirects=False)
        return None
    except requests.exceptions.SSLError:
        return "TLS verification failed"
    except requests.exceptions.Timeout:
        return "timed out"
    except requests.exceptions.ConnectionError as error:
        return "connection refused" if "refused" in str(error).lower() else "connection failed"
    except requests.exceptions.RequestException as error:
        return type(error).__name__


def check(credentials: Credentials, cloud: Cloud, skip: List[str]) -> Dict[str, str]:
    """The endpoints a run will use, each answering; raises naming those
    that do not, unless the user chose to go on without them (skip)."""
    from tcup.launcher.cloud.identity import _verify

    endpoints = endpoints_to_use(credentials, cloud)
    if "identity" in skip:
        raise BadInput("--skip-service identity: TCUP and Tempest need Keystone for everything; it cannot be skipped")
    unknown = sorted(set(skip) - set(endpoints))
    if unknown:
        raise BadInput(f"--skip-service {','.join(unknown)}: not in the catalog "
                       f"(it has {', '.join(sorted(endpoints))})")
    probed = {kind: url for kind, url in endpoints.items() if kind not in skip and kind != "identity"}
    with _verify(credentials) as verify, concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(zip(probed, pool.map(lambda url: probe(url, verify), probed.values())))
    dead = {kind: reason for kind, reason in answers.items() if reason}
    if dead:
        named = "; ".join(f"{kind} at {probed[kind]} ({reason})" for kind, reason in sorted(dead.items()))
        raise Infrastructure(f"the catalog names endpoints that do not answer: {named}; start or fix them, "
                             f"or go on without them: --skip-service {','.join(sorted(dead))}")
    return {kind: url for kind, url in endpoints.items() if kind not in skip}
