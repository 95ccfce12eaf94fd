"""Cloud shapes the test cloud can take besides its plain default.

The default cloud follows TCUP's own assumptions (m1.* flavors, plain http on
127.0.0.1, short listings). A profile makes it look like the clouds operators
run, so TCUP is tried against those shapes too. Profiles combine
(``--profile scs,tls,paging``); a directory keeps the profiles it was made
with, since seeding and certificates cannot be undone by a restart.

Each part of the cloud asks ``"NAME" in site.profiles`` where it differs.
"""

from __future__ import annotations

from collections.abc import Iterable

from .common import CloudError

PROFILES = {
    "scs": "flavors and images as SovereignCloudStack's standards define them (SCS-0103, SCS-0102/0104)",
    "tls": "every public endpoint behind one TLS-terminating proxy, with a private CA and a host name",
    "paging": "small listing limits in every service (Keystone list_limit, Nova max_limit, Neutron pagination...)",
}


def parse(names: Iterable[str] | str) -> tuple[str, ...]:
    """Profile names, checked and in a stable order; "a,b" or ["a", "b"]."""
    if isinstance(names, str):
        names = names.split(",")
    chosen = {name.strip() for name in names if name and name.strip()}
    unknown = chosen - set(PROFILES)
    if unknown:
        raise CloudError(f"unknown profiles {sorted(unknown)}; known: {', '.join(PROFILES)}")
    return tuple(name for name in PROFILES if name in chosen)


# The paging profile: what one page of a listing holds, in every service that
# pages (Nova, Neutron, Cinder, Glance, Swift), also when the client asks for
# more, so a client sees the whole only by following the pages.
PAGE_SIZE = 5
