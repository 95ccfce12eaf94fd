"""A user's openrc or clouds.yaml becomes checked credentials, or one clear error."""

import pytest

from tcup.launcher.cloud import credentials
from tcup.launcher.errors import BadInput

OPENRC = {
    "OS_AUTH_URL": "https://keystone.example.com:5000/v3",
    "OS_USERNAME": "alice",
    "OS_PASSWORD": "s3cret-canary",
    "OS_PROJECT_NAME": "interop",
    "OS_USER_DOMAIN_NAME": "Default",
    "OS_PROJECT_DOMAIN_NAME": "Default",
    "OS_REGION_NAME": "RegionTwo",
    "OS_INTERFACE": "internal",
    "HOME_SECRET_OTHER": "must-not-travel",
}


def never_prompt(_):
    raise AssertionError("prompted although a secret was given")


def test_openrc_fields_become_credentials_and_nothing_else():
    creds = credentials.load(OPENRC, prompt=never_prompt)
    assert (creds.auth_url, creds.username, creds.password, creds.project_name) == (
        "https://keystone.example.com:5000/v3", "alice", "s3cret-canary", "interop")
    assert (creds.region_name, creds.interface, creds.identity_api_version) == ("RegionTwo", "internal", "3")
    assert "must-not-travel" not in repr(vars(creds))


def test_repr_of_credentials_hides_the_password():
    creds = credentials.load(OPENRC, prompt=never_prompt)
    assert "s3cret-canary" not in repr(creds)
    assert "***" in repr(creds)


def test_v2_tenant_names_mean_the_project():
    env = {k: v for k, v in OPENRC.items() if k != "OS_PROJECT_NAME"}
    env.update(OS_TENANT_NAME="legacy-project", OS_IDENTITY_API_VERSION="2.0")
    creds = credentials.load(env, prompt=never_prompt)
    assert creds.project_name == "legacy-project"
    assert creds.identity_api_version == "3"


def test_missing_values_are_all_named_in_one_line():
    with pytest.raises(BadInput) as error:
        credentials.load({"OS_PASSWORD": "x"}, prompt=never_prompt)
    message = str(error.value)
    assert "OS_AUTH_URL" in message and "OS_USERNAME" in message and "OS_PROJECT_NAME" in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["keystone.example.com:5000", "ftp://keystone/v3", "http://", "http://host:notaport/v3"])
def test_malformed_auth_url_is_refused(url):
    with pytest.raises(BadInput, match="OS_AUTH_URL"):
        credentials.load({**OPENRC, "OS_AUTH_URL": url}, prompt=never_prompt)


def test_missing_password_is_prompted_for():
    env = {k: v for k, v in OPENRC.items() if k != "OS_PASSWORD"}
    asked = []
    creds = credentials.load(env, prompt=lambda text: asked.append(text) or "typed-secret")
    assert creds.password == "typed-secret"
    assert len(asked) == 1 and "alice" in asked[0]


def test_application_credentials_need_their_secret_not_a_project():
    env = {
        "OS_AUTH_URL": "https://keystone.example.com/v3",
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_APPLICATION_CREDENTIAL_ID": "abc123",
        "OS_APPLICATION_CREDENTIAL_SECRET": "app-secret-canary",
    }
    creds = credentials.load(env, prompt=never_prompt)
    assert creds.auth_type == "v3applicationcredential"
    assert creds.secrets() == ["app-secret-canary"]


def test_cacert_content_travels_not_its_path(tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    creds = credentials.load({**OPENRC, "OS_CACERT": str(pem)}, prompt=never_prompt)
    assert creds.cacert.startswith("-----BEGIN CERTIFICATE-----")
    assert str(tmp_path) not in repr(creds)


def test_missing_cacert_file_is_named(tmp_path):
    with pytest.raises(BadInput, match="OS_CACERT file .*nope.pem"):
        credentials.load({**OPENRC, "OS_CACERT": str(tmp_path / "nope.pem")}, prompt=never_prompt)


CLOUDS = """
clouds:
  lab:
    auth:
      auth_url: http://10.0.0.1:5000/v3
      username: bob
      project_name: lab-project
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    verify: false
"""
SECURE = """
clouds:
  lab:
    auth:
      password: from-secure-yaml
"""


def test_os_cloud_reads_clouds_and_secure_yaml(tmp_path, monkeypatch):
    config = tmp_path / "openstack"
    config.mkdir()
    (config / "clouds.yaml").write_text(CLOUDS)
    (config / "secure.yaml").write_text(SECURE)
    monkeypatch.chdir(tmp_path)
    creds = credentials.load({"OS_CLOUD": "lab", "XDG_CONFIG_HOME": str(tmp_path)}, prompt=never_prompt)
    assert (creds.username, creds.password, creds.project_name) == ("bob", "from-secure-yaml", "lab-project")
    assert creds.insecure is True


def test_unknown_cloud_lists_the_known_ones(tmp_path, monkeypatch):
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match=r"cloud 'nope' is not in .*clouds there: lab"):
        credentials.load({"OS_CLOUD": "nope", "XDG_CONFIG_HOME": str(tmp_path / "none")}, prompt=never_prompt)


def test_unreadable_clouds_yaml_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "clouds.yaml").write_text("clouds: [unclosed\n  - : :")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match="not valid YAML"):
        credentials.load({"OS_CLOUD": "lab", "XDG_CONFIG_HOME": str(tmp_path / "none")}, prompt=never_prompt)


def test_keyring_supplies_the_password():
    import keyring
    from keyring.backend import KeyringBackend

    class Backend(KeyringBackend):
        priority = 1
        reads = []
        writes = []

        def get_password(self, service, username):
            self.reads.append((service, username))
            return "from-keyring" if (service, username) == ("tcup", "alice@https://keystone.example.com:5000/v3") else None

        def set_password(self, service, username, password):
            self.writes.append(username)

        def delete_password(self, service, username):
            self.writes.append(username)

    backend, previous = Backend(), keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        env = {k: v for k, v in OPENRC.items() if k != "OS_PASSWORD"}
        creds = credentials.load(env, use_keyring=True, prompt=never_prompt)
    finally:
        keyring.set_keyring(previous)
    assert creds.password == "from-keyring"
    assert backend.reads == [("tcup", "alice@https://keystone.example.com:5000/v3")]
    assert backend.writes == []
