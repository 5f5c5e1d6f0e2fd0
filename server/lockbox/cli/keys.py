"""`lockbox keys`: the Ed25519 key that signs decisions (LOCKBOX_SIGNING_KEY)."""

from __future__ import annotations

import argparse

from lockbox.cli.common import CliError
from lockbox.services import signing
from lockbox.settings import Settings


def generate(args: argparse.Namespace, settings: Settings) -> None:
    """Write a new private key (PEM, mode 0600) and print its key id."""
    try:
        signer = signing.generate(args.path)
    except signing.KeyFileError as exc:
        raise CliError(str(exc), 1) from None
    print(f"wrote {args.path} (key id {signer.key_id}); set LOCKBOX_SIGNING_KEY={args.path}")
