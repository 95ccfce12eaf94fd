"""TCUP's patches to Tempest itself, applied in every Python process of a
Tempest run (each stestr worker imports this through the image's
``tcup-hooks.pth`` when ``TCUP_TEMPEST_HOOKS`` is set in its environment).

One patch today: a member's account is also their project's reader. Tempest
47's compute tests ask for ``project_reader`` credentials besides the
primary ones, and a pre-provisioned account file with no account declared
``reader`` makes every compute class fail in setUpClass ("No credentials
matching role: reader"). Declaring the user a second time does not help:
Tempest locks accounts by user and project, not by role. In Keystone's
default roles a member implies reader, so the primary account serves.
"""

import os


def reader_is_primary() -> None:
    from tempest.lib.common import preprov_creds

    provider = preprov_creds.PreProvisionedCredentialProvider
    declared_reader = provider.get_project_reader_creds

    def get_project_reader_creds(self):
        if self.hash_dict["roles"].get("reader"):
            return declared_reader(self)
        return self.get_primary_creds()

    provider.get_project_reader_creds = get_project_reader_creds


def apply() -> None:
    if os.environ.get("TCUP_TEMPEST_HOOKS") != "1":
        return
    try:
        reader_is_primary()
    except ImportError:
        pass  # a process of the run that has no Tempest to patch (e.g. the stestr parent)


apply()
