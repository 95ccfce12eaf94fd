"""`tcup upload RUN` and `tcup pubkey`, and the upload at the end of a run:
what the user is asked (a key's passphrase, a yes) and told."""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tcup.contract import EXIT_OK
from tcup.launcher.errors import BadInput
from tcup.launcher.interrupts import Interrupted


@dataclass(frozen=True)
class UploadOptions:
    """Where and how to upload: the options `tcup` and `tcup upload` share."""

    url: Optional[str]  # --upload-url; None: $REFSTACK_URL, else refstack.openstack.org
    sign_key: Optional[Path]
    retries: int
    timeout: float

    @classmethod
    def from_args(cls, args) -> "UploadOptions":
        return cls(args.upload_url, args.sign_key, args.upload_retries, args.upload_timeout)


def _passphrase() -> str:
    import getpass

    return getpass.getpass("Passphrase for the signing key: ")


def upload_run(path: Path, options: UploadOptions, force: bool = False) -> int:
    """Upload a saved run; on failure keep it and say how to resume."""
    from tcup.launcher.upload import refstack as upload
    from tcup.launcher.upload.signing import SigningError

    base_url = upload.upload_url(options.url)
    try:
        url = upload.upload(
            path,
            base_url,
            sign_key=options.sign_key,
            passphrase=_passphrase if sys.stdin.isatty() else None,
            retry=upload.Retry(tries=options.retries, max_total=options.timeout),
            confirm=_confirm if sys.stdin.isatty() else None,
            force=force,
            log=lambda message: print(f"tcup: {message}", file=sys.stderr, flush=True),
        )
    except SigningError as error:
        raise BadInput(str(error))
    except upload.UploadError as error:
        print(f"tcup: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        raise Interrupted(f"while uploading to {base_url}; the upload did not finish, and {path} is kept as it was; "
                          f"to upload it: {upload.resume_command(path, base_url, options.sign_key)}") from None
    print(f"tcup: uploaded: {url}", flush=True)
    from tcup.launcher.results import context

    context.note_upload(path, url)  # the run's summary and report say where it went
    return EXIT_OK


def _confirm(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def upload_saved(args) -> int:
    """`tcup upload RUN`: the resume path for a run that was not uploaded."""
    return upload_run(saved_results(args.run, args.output), UploadOptions.from_args(args), force=args.force)


def saved_results(run: Path, root: Optional[Path]) -> Path:
    """What `tcup upload` was given: a path as it is (a run directory or a
    RefStack JSON file), else a run's name under the results root, as
    `tcup results` lists it (and rerun, diff, report and bundle take it)."""
    if run.exists() or run.is_symlink():
        return run
    if run.is_absolute() or len(run.parts) != 1:
        raise BadInput(f"{run} does not exist; give a run directory (see `tcup results`) or a RefStack JSON file")
    from tcup.launcher.results.runs import find_run

    return find_run(str(run), root)


def pubkey(args) -> int:
    """`tcup pubkey`: what a RefStack server asks for to register a key."""
    from tcup.launcher.upload import signing

    try:
        key = signing.load_key(args.sign_key, _passphrase if sys.stdin.isatty() else None)
    except signing.SigningError as error:
        raise BadInput(str(error))
    public, signature = signing.registration(key)
    print(f"public key:\n{public}\n\nself-signature (over the bytes 'signature'):\n{signature}")
    return EXIT_OK
