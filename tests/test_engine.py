"""The launcher's engine and image logic without an engine: which socket
is used, what a CA file may put into an image, what names the image, and
cleanup that never replaces the error on its way."""

from pathlib import Path

import pytest

from tcup.launcher.engine import connection
from tcup.launcher.engine import container as container_
from tcup.launcher.engine import image as image_
from tcup.launcher.errors import BadInput, Infrastructure



def ca_and_key(name: str):
    """A self-signed CA certificate and its private key, both PEM, as a proxy's CA file holds them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


CERT, KEY = ca_and_key("TCUP test proxy CA")
OTHER_CERT, _ = ca_and_key("TCUP test other CA")


@pytest.fixture
def no_engine_env(monkeypatch, tmp_path):
    for name in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setattr(connection, "DOCKER_SOCKET", str(tmp_path / "docker.sock"))
    monkeypatch.setattr(connection, "PODMAN_SOCKETS", (str(tmp_path / "rootful.sock"), "{runtime}/podman/podman.sock"))
    return tmp_path


def test_docker_host_comes_first(no_engine_env, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///somewhere/else.sock")
    (no_engine_env / "docker.sock").touch()
    assert connection.find_host() == "unix:///somewhere/else.sock"


def test_then_docker_then_rootful_then_rootless_podman(no_engine_env):
    rootless = no_engine_env / "run" / "podman" / "podman.sock"
    rootless.parent.mkdir(parents=True)
    rootless.touch()
    assert connection.find_host() == f"unix://{rootless}"
    (no_engine_env / "rootful.sock").touch()
    assert connection.find_host() == f"unix://{no_engine_env}/rootful.sock"
    (no_engine_env / "docker.sock").touch()
    assert connection.find_host() == f"unix://{no_engine_env}/docker.sock"


def test_a_socket_this_user_may_not_use_is_passed_over():
    """Only an ordinary user meets a socket it may not use (root may use
    any): run as one, as root through setpriv, so CI (root) tests it too."""
    import shutil
    import sys
    import tempfile

    from conftest import ROOT, as_ordinary_user

    place = Path(tempfile.mkdtemp(prefix="tcup-sockets-"))  # where the ordinary user can look
    try:
        place.chmod(0o755)
        for name, mode in (("docker.sock", 0), ("rootful.sock", 0o666)):
            (place / name).touch()
            (place / name).chmod(mode)  # whatever the umask
        find = ("import sys; sys.path.insert(0, sys.argv[1])\n"
                "from tcup.launcher.engine import connection\n"
                "connection.DOCKER_SOCKET = sys.argv[2] + '/docker.sock'\n"
                "connection.PODMAN_SOCKETS = (sys.argv[2] + '/rootful.sock',)\n"
                "print(connection.find_host())\n")
        done = as_ordinary_user([sys.executable, "-c", find, str(ROOT / "src"), str(place)],
                                env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(place)}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"unix://{place}/rootful.sock\n"
    finally:
        shutil.rmtree(place)


def test_no_engine_says_how_to_get_one(no_engine_env):
    with pytest.raises(Infrastructure, match="no container engine found.*podman.socket"):
        connection.find_host()


# Every spelling the docker SDK reads as plain HTTP to another machine.
CLEAR_TEXT_HOSTS = ["tcp://cloud-ci.example.com:2375", "tcp://10.0.0.5:2375", "http://192.0.2.10:2375",
                    "TCP://192.0.2.10:2375", "Tcp://192.0.2.10:2375", "192.0.2.10:2375", " tcp://192.0.2.10:2375",
                    "tcp://127.0.0.1.attacker.example:2375", "tcp://localhost.attacker.example:2375",
                    "tcp://[2001:db8::1]:2375", "tcp://0.0.0.0:2375"]


@pytest.mark.parametrize("host", CLEAR_TEXT_HOSTS)
def test_a_network_engine_without_tls_is_refused(no_engine_env, monkeypatch, host):
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(BadInput, match="without verified TLS.*DOCKER_TLS_VERIFY"):
        connection.find_host()
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "")  # the SDK's "no"
    with pytest.raises(BadInput, match="without verified TLS"):
        connection.find_host()
    monkeypatch.delenv("DOCKER_TLS_VERIFY")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(no_engine_env))  # TLS, but nothing verified
    with pytest.raises(BadInput, match="without verified TLS"):
        connection.find_host()


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "tcp://127.3.2.1:2375", "127.0.0.1:2375",
                                  "tcp://[::1]:2375", "[::1]:2375", "unix:///run/docker.sock",
                                  "ssh://engine@engine.example.com", "https://engine.example.com:2376"])
def test_a_network_engine_with_tls_or_on_loopback_is_taken(no_engine_env, monkeypatch, host):
    monkeypatch.setenv("DOCKER_HOST", host)
    assert connection.find_host() == host


def test_verified_tls_makes_any_network_engine_fine(no_engine_env, monkeypatch):
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    for host in CLEAR_TEXT_HOSTS:
        monkeypatch.setenv("DOCKER_HOST", host)
        assert connection.find_host() == host


@pytest.mark.parametrize("host", ["localhost:2375", "tcp://", "fd://3", "tcp://engine.example.com"])
def test_an_engine_address_the_sdk_cannot_read_is_one_line(no_engine_env, monkeypatch, host):
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(BadInput, match=r"is not an engine address \(.+\); use unix://PATH"):
        connection.find_host()


def test_tls_settings_that_do_not_work_get_one_line(no_engine_env, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://engine.example.com:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(no_engine_env / "no-certs"))
    with pytest.raises(BadInput, match="DOCKER_TLS_VERIFY/DOCKER_CERT_PATH"):
        connection.Engine.connect()


def test_only_certificates_of_a_ca_file_are_kept(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"some comment\n" + CERT + b"\n# another\n" + OTHER_CERT + b"trailing words")
    assert image_.read_ca(ca) == CERT + OTHER_CERT  # as cryptography writes them: nothing of the file's own


def key_in(body: bytes) -> bytes:
    return b"".join(line for line in body.splitlines(keepends=True) if not line.startswith(b"-----"))


@pytest.mark.parametrize("content", [
    pytest.param(KEY + CERT, id="key first"),
    pytest.param(CERT + KEY.replace(b"PRIVATE KEY", b"RSA PRIVATE KEY"), id="RSA key after"),
    # A certificate block without its END line swallows the key block after it.
    pytest.param(CERT.replace(b"-----END CERTIFICATE-----\n", b"") + KEY + b"-----END CERTIFICATE-----\n",
                 id="unterminated certificate"),
    pytest.param(CERT + b"# the PRIVATE KEY is below\n" + key_in(KEY), id="words and a bare key"),
])
def test_a_ca_file_with_a_private_key_anywhere_is_refused(tmp_path, content):
    ca = tmp_path / "mitmproxy-ca.pem"
    ca.write_bytes(content)
    with pytest.raises(BadInput, match="holds a private key; give only the CA certificate"):
        image_.read_ca(ca)


def test_a_certificate_block_that_is_no_certificate_stays_out(tmp_path, capsys):
    """A key (or anything) dressed as a certificate never reaches the image."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CERT + b"-----BEGIN CERTIFICATE-----\n" + key_in(KEY) + b"-----END CERTIFICATE-----\n")
    assert image_.read_ca(ca) == CERT
    assert capsys.readouterr().err == (f"tcup: warning: --ca-cert {ca}: 1 of 2 certificate blocks are not X.509 "
                                       "certificates and are left out\n")
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n" + key_in(KEY) + b"-----END CERTIFICATE-----\n")
    with pytest.raises(BadInput, match="holds no X.509 certificate in PEM form"):
        image_.read_ca(ca)
    ca.write_bytes(b"no PEM at all")
    with pytest.raises(BadInput, match="holds no X.509 certificate in PEM form"):
        image_.read_ca(ca)


def test_the_tag_names_what_tcup_runs_not_the_ca(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CERT)
    assert image_.Image(ca).tag == image_.Image().tag
    assert image_.Image(ca).ca_digest != image_.Image().ca_digest == "none"


class FakeEngine:
    """Only what Image.build_reason asks: an image's labels."""

    def __init__(self, labels):
        self.labels = labels

    def image_labels(self, tag):
        return self.labels


def test_why_an_image_is_built(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CERT)
    with_ca = image_.Image(ca)
    assert "no image for this TCUP version" in with_ca.build_reason(FakeEngine(None))
    assert "other CA certificates" in with_ca.build_reason(FakeEngine({image_.CA_LABEL: "none"}))
    assert with_ca.build_reason(FakeEngine({image_.CA_LABEL: with_ca.ca_digest})) is None
    # No CA given: the image on hand serves, whatever CA it was built with.
    assert image_.Image().build_reason(FakeEngine({image_.CA_LABEL: with_ca.ca_digest})) is None
    assert image_.Image().build_reason(FakeEngine({}), rebuild=True) == "--rebuild"


class BrokenApi:
    """An engine that died mid-run: every cleanup call fails."""

    def stop(self, *args, **kwargs):
        raise ConnectionError("engine gone")

    remove_container = stop


class BrokenEngine:
    name = "docker"
    api = BrokenApi()


def test_cleanup_never_replaces_the_error_on_its_way(capsys):
    box = container_.Container(BrokenEngine(), "tcup:test")
    box.id = "0123456789abcdef"
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as error:
        box.__exit__(type(error), error, error.__traceback__)  # must not raise
    warning = capsys.readouterr().err
    assert "tcup: warning: could not remove container 0123456789ab" in warning and "docker rm -f" in warning


def test_cleanup_that_fails_after_success_is_an_error():
    box = container_.Container(BrokenEngine(), "tcup:test")
    box.id = "0123456789abcdef"
    with pytest.raises(Infrastructure, match="could not remove container"):
        box.__exit__(None, None, None)


class SavingEngine:
    """Only what Image.save asks: the image as a `docker save` tar, in chunks."""

    def __init__(self, chunks, fail=False):
        self.chunks, self.fail = chunks, fail

    def save_image(self, tag):
        yield from self.chunks
        if self.fail:
            raise Infrastructure(f"could not save image {tag}: the engine went away")


@pytest.mark.parametrize("name", ["tcup-image.tar", "tcup-image.tar.gz"])
def test_saving_the_image_follows_no_link(tmp_path, name):
    """Links planted where the file is written aside, and at the file itself:
    what they point to stays as it was; the saved file is new and owner-only."""
    import gzip

    victim = tmp_path / "victim"
    victim.write_bytes(b"the user's own file")
    target = tmp_path / name
    (tmp_path / f"{name}.partial").symlink_to(victim)
    target.symlink_to(victim)
    image_.Image().save(SavingEngine([b"layer one ", b"layer two"]), target)
    assert victim.read_bytes() == b"the user's own file"
    assert not target.is_symlink() and oct(target.stat().st_mode & 0o777) == "0o600"
    data = target.read_bytes()
    assert (gzip.decompress(data) if name.endswith(".gz") else data) == b"layer one layer two"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, f"{name}.partial", "victim"])


def test_a_save_that_fails_leaves_nothing(tmp_path):
    target = tmp_path / "tcup-image.tar"
    with pytest.raises(Infrastructure, match="the engine went away"):
        image_.Image().save(SavingEngine([b"layer one"], fail=True), target)
    assert list(tmp_path.iterdir()) == []


# --- loading an image: only an archive that holds exactly TCUP's -----------------------

def archive(tmp_path, members, gz=False):
    """A `docker save`-like archive of small JSON members (name -> document or bytes)."""
    import io
    import json
    import tarfile

    path = tmp_path / ("image.tar.gz" if gz else "image.tar")
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for name, content in members:
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class LoadingEngine:
    """Only what Image.load asks: a load, recorded."""

    def __init__(self):
        self.loaded = []

    def load_image(self, file):
        self.loaded.append(file.read())
        return []


TAG = image_.Image().tag
REPO, VERSION = TAG.split(":")


@pytest.mark.parametrize("members", [
    pytest.param([("manifest.json", [{"RepoTags": [TAG]}]), ("repositories", {REPO: {VERSION: "l"}})], id="docker"),
    pytest.param([("./manifest.json", [{"RepoTags": [f"localhost/{TAG}"]}])], id="podman"),
    pytest.param([("index.json", {"manifests": [{"annotations": {"io.containerd.image.name": f"docker.io/library/{TAG}",
                                                                 "org.opencontainers.image.ref.name": VERSION}}]}),
                  ("manifest.json", [{"RepoTags": [TAG]}])], id="docker 25, OCI index"),
])
def test_an_archive_of_exactly_tcups_image_is_loaded(tmp_path, members):
    for gz in (False, True):
        engine = LoadingEngine()
        path = archive(tmp_path, members, gz)
        image_.Image().load(engine, path)
        assert engine.loaded == [path.read_bytes()]  # the whole file, from its start


@pytest.mark.parametrize("members, shown", [
    ([("manifest.json", [{"RepoTags": [TAG, "debian:bookworm-slim"]}])], "debian:bookworm-slim"),
    ([("manifest.json", [{"RepoTags": [TAG]}, {"RepoTags": ["debian:bookworm-slim"]}])], "debian:bookworm-slim"),
    ([("manifest.json", [{"RepoTags": [TAG]}]), ("repositories", {REPO: {VERSION: "l"}, "debian": {"bookworm-slim": "l"}})],
     "debian:bookworm-slim"),
    ([("manifest.json", [{"RepoTags": [TAG]}]),
      ("index.json", {"manifests": [{"annotations": {"io.containerd.image.name": "docker.io/library/debian:12"}}]})],
     "debian:12"),
    # Two members of one name: the engine takes the last.
    ([("manifest.json", [{"RepoTags": [TAG]}]), ("manifest.json", [{"RepoTags": ["debian:bookworm-slim"]}])],
     "debian:bookworm-slim"),
    ([("manifest.json", [{"RepoTags": []}])], "no tagged image"),
    ([("manifest.json", [{"RepoTags": ["tcup:0000000000000000"]}])], "tcup:0000000000000000"),
])
def test_an_archive_with_any_other_name_is_refused_and_nothing_loaded(tmp_path, members, shown):
    engine = LoadingEngine()
    path = archive(tmp_path, members)
    with pytest.raises(BadInput, match=f"holds .*{shown}.*, not only {TAG}, the image this TCUP drives; nothing was "
                                       "loaded"):
        image_.Image().load(engine, path)
    assert engine.loaded == []


def test_a_file_that_is_no_image_archive_is_refused_in_one_line(tmp_path):
    engine = LoadingEngine()
    for content, said in ((b"not a tar at all", "is not an image archive"),
                          (archive(tmp_path, [("layer.tar", b"x")]).read_bytes(), "has no manifest.json"),
                          (archive(tmp_path, [("manifest.json", b"{not json")]).read_bytes(), "is not an image archive")):
        path = tmp_path / "junk.tar"
        path.write_bytes(content)
        with pytest.raises(BadInput, match=said):
            image_.Image().load(engine, path)
    assert engine.loaded == []


# --- an engine's refusal: one line, exit 3, nothing left --------------------------------

CATATONIT = ("container create: container-init binary not found on the host: stat /usr/libexec/podman/catatonit: "
             "no such file or directory")


def api_error(explanation: str):
    """The error the docker SDK raises for an engine's HTTP 500."""
    import requests
    from docker.errors import APIError

    response = requests.Response()
    response.status_code, response.reason = 500, "Internal Server Error"
    return APIError("500 Server Error", response=response, explanation=explanation)


class RefusingApi:
    """An engine whose API refuses one step of a container's life; records the rest."""

    def __init__(self, refuses: str):
        self.refuses, self.calls = refuses, []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append(name)
            if name == self.refuses:
                raise api_error(CATATONIT if name == "create_container" else "cannot start: no space left on device")
            return {"Id": "0123456789abcdef"} if name == "create_container" else {"StatusCode": 0}
        return call


class RefusingEngine:
    name, host, rootless = "podman", "unix:///run/podman/podman.sock", False

    def __init__(self, refuses):
        self.api = RefusingApi(refuses)

    def user(self):
        return "1000:1000"

    def userns_mode(self):
        return None


def test_an_engine_refusing_to_create_the_container_is_one_line_with_what_to_do():
    engine = RefusingEngine("create_container")
    with pytest.raises(Infrastructure) as refused:
        with container_.Container(engine, "tcup:0123456789abcdef"):
            pass
    assert str(refused.value) == (
        "the container engine at unix:///run/podman/podman.sock refused to create the run's container (image "
        f"tcup:0123456789abcdef): {CATATONIT}; Podman runs TCUP's container with an init process (--init) and needs "
        "its helper for that: install the catatonit package (e.g. `sudo apt-get install catatonit`; Debian only "
        "recommends it)")
    assert refused.value.exit_code == 3 and refused.value.__cause__ is None and refused.value.__suppress_context__
    assert engine.api.calls == ["create_host_config", "create_container"]  # nothing was made, nothing to remove


def test_an_engine_refusing_to_start_the_container_leaves_none_behind():
    engine = RefusingEngine("start")
    with pytest.raises(Infrastructure, match="refused to start the run's container: cannot start: no space left on "
                                             "device; the engine's disk is full"):
        with container_.Container(engine, "tcup:0123456789abcdef"):
            pass
    assert engine.api.calls[-2:] == ["stop", "remove_container"]


def test_crun_refusing_a_hybrid_cgroup_host_names_runc():
    """Seen in CI: cgroup v1 with a cgroup2 tree that holds a controller."""
    said = connection.refusal(RefusingEngine("attach"), "attach to the run's container", api_error(
        "preparing container 9b4b for attach: crun: cgroups in hybrid mode not supported, drop all controllers "
        "from cgroupv2: OCI runtime error"))
    assert said.endswith('; Podman\'s runtime crun cannot use this host\'s mix of cgroup v1 and v2; use runc instead: '
                         'set runtime = "runc" under [engine] in containers.conf (and install the runc package)')


def test_an_engine_error_that_escapes_is_one_line_at_the_command_line(monkeypatch, capsys):
    """The net under every engine_request: whatever the engine says reaches
    the user as one line, exit 3."""
    from tcup.launcher import cli
    from tcup.launcher.engine import command

    def results(args):
        raise api_error("no such image: tcup:0123456789abcdef")

    monkeypatch.setattr(command, "build_image", results)
    assert cli.main(["image"]) == 3
    assert capsys.readouterr().err == ("tcup: error: the container engine refused to do what TCUP asked: no such "
                                       "image: tcup:0123456789abcdef; the image went away while TCUP used it; run "
                                       "TCUP again to build it\n")
