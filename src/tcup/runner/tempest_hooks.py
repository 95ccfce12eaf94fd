"""TCUP's patches to Tempest itself, applied in every Python process of a
Tempest run (each stestr worker imports this through the image's
``tcup-hooks.pth`` when ``TCUP_TEMPEST_HOOKS`` is set in its environment).

Two patches. First, every resource a request of the run creates is written
down at once in the run's record (``tcup.runner.records``), the evidence
TCUP's cleanup removes by: the answer to each POST, a Swift container's PUT.

Second, a member's account is also their project's reader. Tempest
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


def record_creations(path: str) -> None:
    from tempest.lib.common import rest_client
    from tempest.lib.services.object_storage import container_client

    from tcup.runner import records

    post = rest_client.RestClient.post
    create = container_client.ContainerClient.create_container

    def note(found) -> None:
        try:
            records.append(path, found)
        except OSError:
            pass  # recording must never fail a test

    def recording_post(self, url, body, *args, **kwargs):
        asked = records.ask(url, body)
        note([asked] if asked else [])
        try:
            answer = post(self, url, body, *args, **kwargs)
        except Exception as error:
            # A refusal (4xx: most negative tests) made nothing; a 5xx or a
            # lost connection may have, and stays asked-for, unanswered.
            status = getattr(getattr(error, "resp", None), "status", None)
            if asked and isinstance(status, int) and status < 500:
                note([{"answered": asked["ask"]}])
            raise
        resp, resp_body = answer
        location = resp.get("location") if hasattr(resp, "get") else None
        note(records.answered(asked, records.from_answer(url, resp_body, location)))
        return answer

    def recording_create_container(self, container_name, **headers):
        answer = create(self, container_name, **headers)
        note([{"kind": "containers", "id": str(container_name), "name": str(container_name)}])
        return answer

    rest_client.RestClient.post = recording_post
    container_client.ContainerClient.create_container = recording_create_container


def apply() -> None:
    if os.environ.get("TCUP_TEMPEST_HOOKS") != "1":
        return
    try:
        reader_is_primary()
        record = os.environ.get("TCUP_RECORD_FILE")
        if record:
            record_creations(record)
    except ImportError:
        pass  # a process of the run that has no Tempest to patch (e.g. the stestr parent)


apply()
