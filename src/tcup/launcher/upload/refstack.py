"""Publishing saved results to a RefStack server.

The run directory is saved before any upload, so an upload is always a step
that can fail and be resumed: ``tcup upload RUN`` reads ``refstack.json``,
sends it, and notes each success in ``uploads.json`` beside it. Nothing in the
run directory changes when an upload fails.

What leaves the machine is only the cloud's id (cpid), the run's duration and
the passed tests' names and ids: the body is rebuilt from those keys, so no
user, project, domain, region or auth URL can ride along, whatever else
``refstack.json`` holds. A signature is added only when the user asks for it.

``requests`` (and ``cryptography``, in ``signing``) are imported inside the
functions that send or sign, so ``tcup --help`` stays quick.
"""

import hashlib
import json
import os
import random
import re
import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from tcup import __version__, contract, private_files
from tcup.contract import EXIT_BAD_INPUT
from tcup.launcher.errors import EXIT_UPLOAD_FAILED, TcupError, network_reason, printable
from tcup.launcher.results.runs import UPLOADS_FILE, run_holding, unfinished
from tcup.launcher.upload.body import encode, request_body

DEFAULT_URL = "https://refstack.openstack.org/api"
URL_VARIABLE = "REFSTACK_URL"
RESULTS_PATH = "/v1/results"
# Longest server message quoted back to the user.
MESSAGE_CHARS = 300


class UploadError(TcupError):
    """An upload that did not happen; ``str(error)`` is one line, ``resume`` the command that retries it."""

    exit_code = EXIT_UPLOAD_FAILED

    def __init__(self, message: str, exit_code: Optional[int] = None, resume: Optional[str] = None):
        super().__init__(message, exit_code)
        self.resume = resume


@dataclass
class Retry:
    """How long to keep trying: at most ``tries`` requests and ``max_total`` seconds in all.

    The first wait is ``initial`` seconds and doubles each time; each request
    gives up after ``request_timeout`` seconds so a hanging server cannot hang us.
    """

    tries: int = 5
    initial: float = 1.0
    max_total: float = 60.0
    request_timeout: float = 20.0

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based): doubling, with jitter.

        Half the wait is fixed and half random, so many clients that failed
        together (a server restart) do not all come back in the same second.
        """
        full = self.initial * (2 ** (attempt - 1))
        return full / 2 + random.uniform(0, full / 2)


@dataclass
class Answer:
    """One try's outcome: the server's 2xx JSON, or why it failed and whether another try may help."""

    result: Optional[dict] = None
    reason: str = ""
    retry: bool = False
    retry_after: Optional[float] = None
    # The request reached the server but no answer came: it may still store it.
    maybe_stored: bool = False
    # The server answered that it will not take the results as sent (a 3xx or
    # a final 4xx: the results, the key or the URL must change): bad input.
    refused: bool = False
    status: Optional[int] = None  # the HTTP status, when the server answered


def upload_url(flag: Optional[str], environ: Mapping[str, str] = os.environ) -> str:
    """The RefStack API base URL: the --upload-url flag, else $REFSTACK_URL, else the public server."""
    if flag is not None:
        url, source = flag, "--upload-url"
    elif environ.get(URL_VARIABLE):
        url, source = environ[URL_VARIABLE], URL_VARIABLE
    else:
        url, source = DEFAULT_URL, "default"
    return check_url(url, source)


def check_url(url: str, source: str = "--upload-url") -> str:
    """``url`` without a trailing slash, or a one-line UploadError saying what is wrong with it."""
    shown = url.strip()[:200]
    parts = urlsplit(url.strip())
    try:
        parts.port
    except ValueError:
        raise UploadError(f"{source} {shown!r} has an invalid port", EXIT_BAD_INPUT) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UploadError(
            f"{source} {shown!r} is not an http(s) URL with a host, e.g. {DEFAULT_URL}", EXIT_BAD_INPUT
        )
    if parts.username or parts.password:
        # It would be printed in resume commands and stored in uploads.json.
        raise UploadError(f"{source} must not hold a user name or password", EXIT_BAD_INPUT)
    if parts.query or parts.fragment:
        raise UploadError(f"{source} {shown!r} must be the API base URL, without ?query or #fragment", EXIT_BAD_INPUT)
    return url.strip().rstrip("/")


def upload(
    run: Path,
    base_url: str,
    *,
    sign_key: Optional[Path] = None,
    passphrase: Optional[Callable[[], str]] = None,
    retry: Retry = Retry(),
    confirm: Optional[Callable[[str], bool]] = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> str:
    """Send the run's results to the RefStack server at ``base_url``; return the result URL.

    ``run`` is a run directory or a bare refstack JSON file. ``confirm`` asks
    the user a yes/no question (None when there is no terminal); ``force``
    skips the questions. ``log`` gets progress lines (never a secret); the
    caller prints the URL. Raises SigningError for a key that cannot sign, and
    UploadError otherwise: its ``exit_code`` is EXIT_BAD_INPUT when the input
    must change, EXIT_UPLOAD_FAILED (with ``resume`` set) when the server or
    network failed.
    """
    run = Path(run)
    base_url = check_url(base_url)
    log = _printable_log(log)
    resume = resume_command(run, base_url, sign_key)
    # Which file holds the results, and where successes are noted.
    results_file, record_file = locate(run, force, log)
    # Only the anonymous fields, checked the way the server should but does not.
    body_doc = request_body(read_json(results_file))
    body = encode(body_doc)
    digest = hashlib.sha256(body).hexdigest()
    # The same results to the same server twice is almost always a mistake.
    earlier = earlier_upload(record_file, base_url, digest)
    if earlier and not _upload_again(run, earlier, confirm, force, log):
        return earlier["url"]
    # Sign only when asked; the passphrase is asked for here, before any network.
    headers = request_headers(body, sign_key, passphrase)
    signed = " (signed)" if sign_key else ""
    count = len(body_doc["results"])
    log(f"uploading {count} passed {'test' if count == 1 else 'tests'} to {base_url}{signed}")
    result = send(base_url, body, headers, retry, log, resume,
                  resume_at=lambda url: resume_command(run, url, sign_key))
    url = result_url(result, base_url)
    note_upload(record_file, base_url, result, bool(sign_key), digest, log)
    return url


def _printable_log(log: Callable[[str], None]) -> Callable[[str], None]:
    """log, with each line made safe for a terminal: lines quote the server."""
    return lambda message: log(printable(message))


def locate(run: Path, force: bool = False, log: Callable[[str], None] = print) -> Tuple[Path, Path]:
    """(results file, uploads record) for a run directory or a bare refstack
    JSON file. A run, named by its directory or by a file in it, must be
    finished (runs.unfinished decides) unless forced."""
    if run.is_dir():
        results_file = run / contract.REFSTACK_FILE
        if not results_file.is_file():
            raise UploadError(f"{run} has no {contract.REFSTACK_FILE}; give a TCUP run directory", EXIT_BAD_INPUT)
        _check_complete(run, force, log)
        return results_file, run / UPLOADS_FILE
    if not (run.exists() or run.is_symlink()):
        raise UploadError(f"{run} does not exist; give a run directory or a {contract.REFSTACK_FILE} file",
                          EXIT_BAD_INPUT)
    directory = run_holding(run)
    if directory is None:
        return run, run.with_name(run.name + "." + UPLOADS_FILE)
    _check_complete(directory, force, log)
    # A run's own refstack.json is noted where `tcup results` looks: the run's record.
    mine = run.name == contract.REFSTACK_FILE
    return run, directory / UPLOADS_FILE if mine else run.with_name(run.name + "." + UPLOADS_FILE)


def _check_complete(run: Path, force: bool, log: Callable[[str], None]) -> None:
    """Refuse a run the launcher did not finish: partial results would misstate the cloud."""
    why = unfinished(run)
    if why is None:
        return
    if not force:
        raise UploadError(f"{run} {why}; its results are partial (--force uploads them anyway)", EXIT_BAD_INPUT)
    log(f"warning: {run} {why}; uploading its partial results as asked")


def read_json(path: Path):
    """The parsed JSON of ``path`` (read as every result file is: never
    through a link), or a one-line UploadError."""
    try:
        return json.loads(private_files.read_result(Path(path)).decode("utf-8"))
    except OSError as error:
        raise UploadError(f"cannot read {path}: {error.strerror or error}", EXIT_BAD_INPUT) from None
    except ValueError as error:
        raise UploadError(f"{path} is not valid JSON: {error}", EXIT_BAD_INPUT) from None


def resume_command(run: Path, base_url: str, sign_key: Optional[Path]) -> str:
    """The command line that tries this upload again, with absolute paths."""
    from tcup.launcher.version import invoked_as

    words = ["upload", os.path.abspath(run), "--upload-url", base_url]
    if sign_key:
        words += ["--sign-key", os.path.abspath(sign_key)]
    return " ".join([invoked_as()] + [shlex.quote(word) for word in words])


def read_uploads(record_file: Path) -> list:
    """The uploads noted so far (an empty list when none)."""
    if not record_file.exists():
        return []
    doc = read_json(record_file)
    if not isinstance(doc, list):
        raise UploadError(f"{record_file} is not a list of uploads; move it away and try again", EXIT_BAD_INPUT)
    return doc


def earlier_upload(record_file: Path, base_url: str, digest: str) -> Optional[dict]:
    """The last upload of these exact bytes to this server, if there was one."""
    same = [
        entry
        for entry in read_uploads(record_file)
        if isinstance(entry, dict) and entry.get("server") == base_url and entry.get("body_sha256") == digest
    ]
    return same[-1] if same else None


def _upload_again(run: Path, earlier: dict, confirm, force: bool, log: Callable[[str], None]) -> bool:
    """Whether to send results the server already has: yes with force, else the user says, else no."""
    said = f"{run} was already uploaded to {earlier.get('server')} at {earlier.get('uploaded_at')}: {earlier.get('url')}"
    if force:
        log(f"{said}; uploading again as asked")
        return True
    if confirm is None:
        raise UploadError(f"{said}; use --force to upload it again", EXIT_BAD_INPUT)
    if confirm(f"{said}. Upload it again?"):
        return True
    log(f"not uploaded again; the earlier upload is {earlier.get('url')}")
    return False


def request_headers(body: bytes, sign_key: Optional[Path], passphrase) -> dict:
    """HTTP headers for the upload, with X-Signature and X-Public-Key when a key is given."""
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": f"tcup/{__version__}"}
    if sign_key is None:
        return headers
    from tcup.launcher.upload import signing  # only signed uploads need cryptography

    key = signing.load_key(Path(sign_key), passphrase)
    headers["X-Signature"] = signing.sign(key, body)
    headers["X-Public-Key"] = signing.public_key_line(key)
    return headers


def send(base_url: str, body: bytes, headers: dict, retry: Retry, log: Callable[[str], None], resume: str,
         resume_at: Optional[Callable[[str], str]] = None) -> dict:
    """POST the body, retrying network errors, 429 and 5xx within ``retry``'s bounds; the server's JSON answer.
    ``resume_at(url)`` is the command that uploads to another base URL (one a 404's hint finds)."""
    url = base_url + RESULTS_PATH
    deadline = time.monotonic() + retry.max_total
    tries = max(1, retry.tries)
    why_not = ""
    unanswered = 0
    for attempt in range(1, tries + 1):
        timeout = max(0.1, min(retry.request_timeout, deadline - time.monotonic()))
        answer = post_once(url, body, headers, timeout)
        if answer.result is not None:
            if unanswered:
                them = "it" if unanswered == 1 else "them"
                log(f"warning: {_tries(unanswered)} got no answer in time; the server may have stored {them} too")
            return answer.result
        unanswered += answer.maybe_stored
        if not answer.retry:
            raise _refusal(base_url, answer, resume, resume_at, retry.request_timeout)
        if attempt == tries:
            break
        wait, why_not = _next_wait(retry, attempt, answer, deadline)
        if why_not:
            break
        log(f"upload try {attempt} of {tries} failed: {answer.reason}; trying again in {_seconds(wait)}")
        time.sleep(wait)
    # A server that stalls may still store what it got (RefStack does, once it goes on).
    stored = f" ({_tries(unanswered)} without an answer may still be stored there)" if unanswered else ""
    raise UploadError(
        f"upload to {base_url} failed after {_tries(attempt)}: {answer.reason}{why_not}{stored}; "
        f"the results are kept; to try again: {resume}",
        resume=resume,
    )


def _refusal(base_url: str, answer: Answer, resume: str, resume_at, timeout: float) -> UploadError:
    """The one line for a final answer; a 404 says where the API is instead."""
    said = f"{base_url} refused the results: {answer.reason}"
    exit_code = EXIT_BAD_INPUT if answer.refused else None
    if answer.status == 404:
        found, tried = api_nearby(base_url, timeout)
        if found:
            resume = resume_at(found) if resume_at else resume
            return UploadError(f"{said}; the server has no {RESULTS_PATH} under {base_url}, but {found}{RESULTS_PATH} "
                               f"answers: {resume}", exit_code, resume=resume)
        if tried is not None:
            return UploadError(f"{said}; the server has no {RESULTS_PATH} under {base_url} (nor under "
                               f"{', '.join(tried)}); give --upload-url the base URL of RefStack's API, usually "
                               f"https://HOST/api as in {DEFAULT_URL}", exit_code, resume=resume)
    return UploadError(f"{said}; after fixing that: {resume}", exit_code, resume=resume)


def api_nearby(base_url: str, timeout: float) -> Tuple[Optional[str], Optional[list]]:
    """After a 404 for base_url + /v1/results: (the base URL near it whose /v1/results
    answers, the URLs tried); (None, None) when base_url's own does: the 404 meant something else."""
    timeout = min(timeout, 5.0)  # a few quick looks, on a server that just answered
    if _lists_results(base_url, timeout):
        return None, None
    tried = _nearby_bases(base_url)
    return next((url for url in tried if _lists_results(url, timeout)), None), tried


def _nearby_bases(base_url: str) -> list:
    """Where the API may be instead: each shorter path (a URL given with /v1,
    or /api on a server that serves /v1 at its root), /api below it and the root."""
    parts = urlsplit(base_url)
    root = f"{parts.scheme}://{parts.netloc}"
    segments = [segment for segment in parts.path.split("/") if segment]
    found = ["/".join([root] + segments[:end]) for end in range(len(segments) - 1, -1, -1)]
    if segments[-1:] != ["api"]:
        found += [base_url + "/api", root + "/api"]
    unique = [url for number, url in enumerate(found) if url != base_url and url not in found[:number]]
    return unique[:4]


def _lists_results(base_url: str, timeout: float) -> bool:
    """Whether base_url + /v1/results answers a GET with JSON, as RefStack does (not a page for every path)."""
    import requests

    try:
        response = requests.get(base_url + RESULTS_PATH, timeout=timeout, allow_redirects=False,
                                headers={"Accept": "application/json", "User-Agent": f"tcup/{__version__}"})
        return response.status_code == 200 and isinstance(response.json(), (dict, list))
    except (requests.RequestException, ValueError):
        return False


def _tries(count: int) -> str:
    """'1 try', '3 tries'."""
    return f"{count} {'try' if count == 1 else 'tries'}"


def _next_wait(retry: Retry, attempt: int, answer: Answer, deadline: float) -> Tuple[float, str]:
    """(seconds to wait before the next try, why there is no next try: "" when there is one)."""
    wait = retry.backoff(attempt)
    if answer.retry_after is not None:
        wait = max(wait, answer.retry_after)
    left = deadline - time.monotonic()
    if wait >= left:
        if answer.retry_after is not None and answer.retry_after >= left:
            asked, limit = _seconds(answer.retry_after), _seconds(retry.max_total)
            return 0.0, f" (the server asked to wait {asked}, past the {limit} limit)"
        return 0.0, f" (no time left within the {_seconds(retry.max_total)} limit)"
    return wait, ""


def post_once(url: str, body: bytes, headers: dict, timeout: float) -> Answer:
    """One POST: the server's JSON on 2xx, else the reason and whether trying again may help."""
    import requests  # only when uploading: tcup --help must not pay for it

    try:
        # No redirects: following one would turn the POST into a GET and lose the body.
        response = requests.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError as error:
        return Answer(reason=f"TLS failed ({network_reason(error)}); check the URL or REQUESTS_CA_BUNDLE")
    except requests.exceptions.ConnectTimeout:
        return Answer(reason=f"no connection within {_seconds(timeout)}", retry=True)
    except requests.Timeout:
        return Answer(reason=f"no answer within {_seconds(timeout)}", retry=True, maybe_stored=True)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
        return Answer(reason=f"cannot reach the server ({network_reason(error)})", retry=True)
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidProxyURL) as error:
        # Its message quotes the URL, and the one at fault may be a proxy's with its password.
        return Answer(reason=f"a URL could not be used ({type(error).__name__}); check --upload-url and the "
                             "https_proxy/http_proxy settings")
    except requests.RequestException as error:
        return Answer(reason=f"the request failed ({network_reason(error)})")
    return judge(response)


def judge(response) -> Answer:
    """What one HTTP answer means for the upload."""
    status = response.status_code
    if 200 <= status < 300:
        try:
            result = response.json()
        except ValueError:
            result = None
        if isinstance(result, dict) and result.get("test_id"):
            return Answer(result=result)
        return Answer(reason=f"HTTP {status} without a result id: {server_message(response)}", status=status)
    if 300 <= status < 400:
        where = _one_line(response.headers.get("Location", "elsewhere"))
        return Answer(reason=f"HTTP {status}: it redirects to {where}; give that as --upload-url", refused=True,
                      status=status)
    shown = f"HTTP {status}: {server_message(response)}"
    if status == 429 or status >= 500:
        return Answer(reason=shown, retry=True, retry_after=retry_after(response.headers.get("Retry-After")),
                      status=status)
    return Answer(reason=shown, refused=400 <= status < 500, status=status)


def server_message(response) -> str:
    """The server's own words in one line: its JSON title/detail/message, else the body text."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        parts = []
        for key in ("title", "detail", "message"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip() and value.strip() not in parts:
                parts.append(value.strip())
        if parts:
            return _one_line(": ".join(parts))
    text = re.sub(r"<[^>]*>", " ", response.text or "")  # an HTML error page: keep its words
    return _one_line(text) or response.reason or "no message"


def retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # rare, and slow to import (~20 ms): only when a server sends a date

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _seconds(value: float) -> str:
    """``value`` seconds as people write them: 20s, 0.5s."""
    return f"{value:.1f}".rstrip("0").rstrip(".") + "s"


def _one_line(text: str) -> str:
    """``text`` (a server's words) on one line, printable, trimmed to MESSAGE_CHARS."""
    text = " ".join(printable(text).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def result_url(result: dict, base_url: str) -> str:
    """Where people see the upload: the server's url, else the API's own address for it."""
    url = result.get("url")
    if isinstance(url, str) and url:
        return printable(url)  # printed, and kept in uploads.json
    return printable(f"{base_url}{RESULTS_PATH}/{result['test_id']}")


def note_upload(record_file: Path, base_url: str, result: dict, signed: bool, digest: str, log) -> None:
    """Add this upload to the record; a failure here is only a warning: the upload itself happened."""
    entry = {
        "server": base_url,
        "url": result_url(result, base_url),
        "test_id": result["test_id"],
        "signed": signed,
        "body_sha256": digest,
        "uploaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        uploads = read_uploads(record_file) + [entry]
        private_files.write_atomically(record_file, (json.dumps(uploads, indent=2) + "\n").encode())
    except (OSError, UploadError) as error:
        log(f"warning: uploaded, but cannot note it in {record_file}: {getattr(error, 'strerror', None) or error}")

