"""The user's credentials, and any --accounts, checked with Keystone before
any image or container: a wrong password costs a second here, an hour later."""

import sys

from tcup.launcher.cloud import credentials as credentials_
from tcup.launcher.errors import BadInput, printable
from tcup.launcher.interrupts import interrupted
from tcup.launcher.progress import secret_mask

PROMPT_TRIES = 3  # a secret typed at the terminal is asked for this many times


def authenticate(use_keyring: bool):
    """The user's credentials (a missing secret asked for at the terminal),
    checked with Keystone before any container exists: (credentials, the
    cloud's facts, the mask of what TCUP prints)."""
    prompts = []  # what the user was asked at the terminal, to ask again after a typo

    def ask(question: str) -> str:
        prompts.append(question)
        return credentials_.prompt_secret(question)

    credentials = credentials_.load(use_keyring=use_keyring, prompt=ask)
    from tcup.launcher.cloud import identity

    with interrupted(lambda: "while asking Keystone for a token; no container was started and nothing was saved"):
        for attempt in range(1, PROMPT_TRIES + 1):
            try:
                cloud = identity.check(credentials)
                break
            except identity.Rejected as error:
                # A secret typed at the prompt may be a typo: ask again, as
                # sudo and ssh do; one from the environment or keyring is final.
                if not prompts or attempt == PROMPT_TRIES:
                    raise
                print(f"tcup: {error}; try again", file=sys.stderr, flush=True)
                credentials = credentials_.with_secret(credentials, ask(prompts[0]))
    if credentials.auth_type == credentials_.APP_CREDENTIAL:
        # Tempest's credential classes and accounts.yaml hold users and
        # passwords only; discover-tempest-config fails on anything else.
        raise BadInput(
            "Keystone accepts this application credential, but Tempest 47 can only test as a user with a password; "
            "set OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME instead"
        )
    return credentials, cloud, secret_mask(credentials)


def member_accounts(path, credentials, cloud) -> list:
    """--accounts: more members for parallel workers, each checked with
    Keystone now (a wrong password costs a second here, an hour later)."""
    if path is None:
        return []
    if cloud.admin:
        raise BadInput("--accounts is for member runs; you are an admin, and Tempest makes the accounts it needs "
                       "(dynamic credentials): drop --accounts")
    from tcup.launcher.cloud import identity

    accounts = credentials_.load_accounts(path, credentials)
    admins = []
    for number, account in enumerate(accounts, 1):
        with interrupted(lambda: "while checking the --accounts; no container was started and nothing was saved"):
            try:
                if identity.check(account).admin:
                    admins.append(f"{number} ({account.username})")
            except BadInput as error:
                raise BadInput(f"--accounts {path}, account {number} ({account.username}): {error}") from None
    if admins:
        # Tempest takes every listed account as a member's: an admin's worker
        # would run its tests with rights a member run does not test.
        which = f"account {admins[0]} has" if len(admins) == 1 else f"accounts {', '.join(admins)} have"
        print(printable(f"tcup: warning: --accounts {path}: {which} the admin role, yet a member run uses every "
                        "account as a member: tests on it run with admin rights; list member accounts only"),
              file=sys.stderr, flush=True)
    return accounts
