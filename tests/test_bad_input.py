"""Bad input gets one clear line, a non-zero exit code, no traceback, and
leaves no container, run directory or temporary file behind."""

import os
import socket
from pathlib import Path
import subprocess
import sys

import pytest

from conftest import base_env, needs, openrc, tcup

EXIT_BAD_INPUT, EXIT_INFRA = 2, 3


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_refusal(done, code, *phrases, tmp_path=None):
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("tcup: error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    if tmp_path is not None:
        assert not list((tmp_path / "tmp").iterdir()), "a temporary file was left behind"
        runs = tmp_path / "runs"
        assert not runs.exists() or not list(runs.iterdir()), "a run directory was left behind"


@pytest.fixture
def user_env(tmp_path):
    (tmp_path / "tmp").mkdir()
    env = base_env(tmp_path)
    env["TMPDIR"] = str(tmp_path / "tmp")
    return env


@pytest.mark.parametrize(
    "variables, phrases",
    [
        ({}, ["OS_AUTH_URL", "OS_USERNAME", "OS_PROJECT_NAME"]),
        ({"OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_PASSWORD": "x", "OS_PROJECT_NAME": "p"}, ["OS_USERNAME"]),
        ({"OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "u", "OS_PASSWORD": "x"}, ["OS_PROJECT_NAME"]),
        ({"OS_AUTH_URL": "keystone:5000", "OS_USERNAME": "u", "OS_PASSWORD": "x", "OS_PROJECT_NAME": "p"},
         ["OS_AUTH_URL 'keystone:5000'"]),
        ({"OS_CLOUD": "nowhere"}, ["no clouds.yaml was found"]),
    ],
)
def test_missing_or_malformed_credentials(user_env, tmp_path, variables, phrases):
    user_env.update(variables, XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs")], user_env, cwd=tmp_path)
    check_refusal(done, EXIT_BAD_INPUT, *phrases, tmp_path=tmp_path)


def test_unreadable_clouds_yaml(user_env, tmp_path):
    (tmp_path / "clouds.yaml").write_text("clouds:\n  lab: [\n")
    user_env["OS_CLOUD"] = "lab"
    done = tcup(["--no-upload"], user_env, cwd=tmp_path)
    check_refusal(done, EXIT_BAD_INPUT, "not valid YAML", tmp_path=tmp_path)


def test_missing_password_without_a_terminal(user_env, tmp_path):
    user_env.update(OS_AUTH_URL="http://127.0.0.1:5000/v3", OS_USERNAME="u", OS_PROJECT_NAME="p")
    done = subprocess.run([sys.executable, "-m", "tcup", "--no-upload"], env=user_env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, timeout=60)  # no controlling terminal
    check_refusal(done, EXIT_BAD_INPUT, "no terminal", tmp_path=tmp_path)


def test_missing_cacert_file(user_env, tmp_path):
    user_env.update(OS_AUTH_URL="https://127.0.0.1:5000/v3", OS_USERNAME="u", OS_PASSWORD="x", OS_PROJECT_NAME="p",
                    OS_CACERT=str(tmp_path / "missing.pem"))
    check_refusal(tcup(["--no-upload"], user_env), EXIT_BAD_INPUT, "OS_CACERT", "missing.pem", tmp_path=tmp_path)


def test_unknown_flag(user_env, tmp_path):
    done = tcup(["--frobnicate"], user_env)
    assert done.returncode == EXIT_BAD_INPUT and "unrecognized arguments: --frobnicate" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_keystone(user_env, tmp_path):
    user_env.update(OS_AUTH_URL=f"http://127.0.0.1:{closed_port()}/v3", OS_USERNAME="u", OS_PASSWORD="x",
                    OS_PROJECT_NAME="p")
    check_refusal(tcup(["--no-upload"], user_env), EXIT_INFRA, "cannot reach Keystone", tmp_path=tmp_path)


@pytest.mark.keystone
def test_wrong_password(keystone, tmp_path):
    env = openrc(keystone, "member", tmp_path, OS_PASSWORD="not-the-password", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs")], env)
    check_refusal(done, EXIT_BAD_INPUT, "rejected", "401", tmp_path=tmp_path)
    assert "not-the-password" not in done.stderr + done.stdout


@pytest.mark.keystone
def test_wrong_project(keystone, tmp_path):
    env = openrc(keystone, "member", tmp_path, OS_PROJECT_NAME="admin", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    check_refusal(tcup(["--no-upload"], env), EXIT_BAD_INPUT, "not the project", tmp_path=tmp_path)


@pytest.mark.keystone
def test_tls_to_a_plain_http_port_says_so(keystone, tmp_path):
    """https:// to Keystone's plain-HTTP port: no CA would help, and the line says what would."""
    env = openrc(keystone, "member", tmp_path, OS_AUTH_URL=keystone.auth_url.replace("http://", "https://"),
                 TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    done = tcup(["--no-upload"], env)
    check_refusal(done, EXIT_BAD_INPUT, "does not speak TLS on that port", "use http://", tmp_path=tmp_path)
    assert "OS_CACERT" not in done.stderr


def test_tls_verification_failure(tmp_path, user_env):
    """A TLS server whose certificate no trusted CA signed: set OS_CACERT."""
    import datetime
    import http.server
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        user_env.update(OS_AUTH_URL=f"https://127.0.0.1:{server.server_address[1]}/v3", OS_USERNAME="u",
                        OS_PASSWORD="p", OS_PROJECT_NAME="p")
        check_refusal(tcup(["--no-upload", "--output", str(tmp_path / "runs")], user_env), EXIT_BAD_INPUT,
                      "is not trusted (self-signed certificate)", "set OS_CACERT", tmp_path=tmp_path)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.keystone
@pytest.mark.engine
@pytest.mark.parametrize(
    "content, phrases",
    [(None, ["--test-list", "does not exist"]), ("", ["lists no tests"]),
     ("tempest.api.nothing.Here.test_x[id-00000000-0000-4000-8000-000000000000]\n", ["matches no test"])],
)
def test_bad_test_list(keystone, image, watch, tmp_path, content, phrases):
    test_list = tmp_path / "list.txt"
    if content is not None:
        test_list.write_text(content)
    env = openrc(keystone, "member", tmp_path, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs"), "--test-list", str(test_list)], env)
    check_refusal(done, EXIT_BAD_INPUT, *phrases, tmp_path=tmp_path)


@pytest.mark.keystone
def test_results_directory_not_writable(keystone, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = openrc(keystone, "member", tmp_path, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    done = tcup(["--no-upload", "--output", str(blocker / "runs")], env)
    check_refusal(done, EXIT_BAD_INPUT, "not writable", "--output", tmp_path=tmp_path)


@pytest.mark.keystone
def test_engine_not_running(keystone, tmp_path):
    env = openrc(keystone, "member", tmp_path, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock", TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs")], env)
    check_refusal(done, EXIT_INFRA, "not running", tmp_path=tmp_path)


@pytest.mark.keystone
@pytest.mark.engine
def test_engine_permission_denied(keystone, engine, pyz, tmp_path):
    """An ordinary user outside the docker group, with the downloaded pyz."""
    import shutil
    import tempfile

    needs(os.geteuid() == 0, "this test acts as another user (nobody), which needs root")

    # pytest's temporary tree and the checkout may be root's alone; this user
    # gets a place of its own, with its own copy of the pyz.
    home = Path(tempfile.mkdtemp(prefix="tcup-nobody-"))
    try:
        home.chmod(0o777)
        shutil.copy(pyz, home / "tcup.pyz")
        env = openrc(keystone, "member", tmp_path, TMPDIR=str(home), HOME=str(home), XDG_DATA_HOME=str(home / "data"),
                     SHIV_ROOT=str(home / "shiv"))
        done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(home / "tcup.pyz"),
                               "--no-upload"], env=env, capture_output=True, text=True, cwd=home,
                              stdin=subprocess.DEVNULL, timeout=120)
        check_refusal(done, EXIT_INFRA, "permission denied", "docker")
        runs = home / "data" / "tcup" / "runs"
        assert not runs.exists() or not list(runs.iterdir()), "a run directory was left behind"
    finally:
        shutil.rmtree(home)


@pytest.mark.keystone
@pytest.mark.engine
def test_image_build_failure_leaves_no_container(keystone, engine, watch, tmp_path):
    """A CA bundle that lacks this network's proxy CA: pip cannot reach PyPI."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "tcup test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256()))
    ca = tmp_path / "unrelated-ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    env = openrc(keystone, "member", tmp_path, TCUP_CA_CERT=str(ca), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    images_before = {i.id for i in engine.images.list(all=True)}
    done = tcup(["--no-upload", "--output", str(tmp_path / "runs")], env, timeout=900)
    assert done.returncode == EXIT_INFRA, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tcup: error: image build failed at step ")
    # Why a build, what failed, what to do, and where the whole log is.
    assert "other CA certificates than --ca-cert" in done.stderr
    assert "behind a TLS-inspecting proxy? give its CA with --ca-cert FILE" in last
    log = Path(last.rsplit("full log: ", 1)[1])
    assert log.is_file() and "CERTIFICATE_VERIFY_FAILED" in log.read_text()
    # Quiet: a line per step and the log's last relevant lines, not pip's whole output.
    assert len(done.stderr.splitlines()) < 30, done.stderr
    assert "tcup: building image: step 1/" in done.stderr
    assert "Traceback" not in done.stderr
    assert not engine.containers.list(all=True, filters={"status": "exited"}), "the failed build left a container"
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
    new_images = [i for i in engine.images.list(all=True) if i.id not in images_before]
    tagged = {t for i in new_images for t in i.tags}
    # The cached layers of the steps that did succeed: children before parents.
    from docker.errors import ImageNotFound

    for leftover in sorted(new_images, key=lambda i: i.attrs["Created"], reverse=True):
        try:
            engine.images.remove(leftover.id, force=True)
        except ImageNotFound:
            pass  # pruned with its child
    assert not tagged, f"a failed build left a tagged image: {tagged}"
