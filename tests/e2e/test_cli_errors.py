"""Mistakes at the command line: one clear line on stderr, a non-zero exit, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.cli_support import Lockbox, assert_clean_failure, clean_env, free_port

UNREACHABLE_POSTGRES = "postgres://postgres@127.0.0.1:1/x"


def test_an_unknown_flag_is_named(lockbox: Lockbox) -> None:
    result = lockbox.run("migrate", "--no-such-flag")
    assert_clean_failure(result, "--no-such-flag")
    assert result.returncode == 2


def test_an_unknown_sub_command_is_named(lockbox: Lockbox) -> None:
    assert_clean_failure(lockbox.run("frobnicate"), "frobnicate")
    assert_clean_failure(lockbox.run("admin", "tenant", "frobnicate"), "frobnicate")


def test_an_unsupported_database_scheme_is_named(lockbox: Lockbox, tmp_path: Path) -> None:
    result = lockbox.run("migrate", "--database-url", "mysql://root@127.0.0.1/lockbox")
    assert_clean_failure(result, "mysql")
    assert list(tmp_path.iterdir()) == []  # no stray default database either


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("migrate",), id="migrate"),
        pytest.param(("seed-demo", "--json"), id="seed-demo"),
        pytest.param(("audit", "verify"), id="audit-verify"),
        pytest.param(("admin", "tenant", "list"), id="admin"),
    ],
)
def test_an_unreachable_postgres_is_reported_with_its_address(
    lockbox: Lockbox, command: tuple[str, ...]
) -> None:
    result = lockbox.run(*command, "--database-url", UNREACHABLE_POSTGRES, timeout=30)
    assert_clean_failure(result, "127.0.0.1:1")


def test_a_database_url_password_is_not_echoed(lockbox: Lockbox) -> None:
    result = lockbox.run(
        "migrate", "--database-url", "postgres://postgres:hunter2@127.0.0.1:1/x", timeout=30
    )
    error = assert_clean_failure(result, "127.0.0.1:1")
    assert "hunter2" not in error


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("admin", "tenant", "list"), id="admin"),
        pytest.param(("serve", "--port", "0"), id="serve"),
    ],
)
def test_an_unsupported_broker_url_is_named(
    lockbox: Lockbox, tmp_path: Path, command: tuple[str, ...]
) -> None:
    database = f"sqlite://{tmp_path / 'lockbox.db'}"
    result = lockbox.run(
        *command, "--database-url", database, "--broker-url", "kafka://127.0.0.1:9092", timeout=30
    )
    assert_clean_failure(result, "kafka://")


def test_a_malformed_environment_setting_is_named(lockbox: Lockbox, tmp_path: Path) -> None:
    env = clean_env(
        LOCKBOX_PORT="eighty", LOCKBOX_DATABASE_URL=f"sqlite://{tmp_path / 'lockbox.db'}"
    )
    result = lockbox.run("serve", "--no-migrate", env=env, timeout=30)
    assert_clean_failure(result, "LOCKBOX_PORT", "eighty")


def test_an_unknown_tenant_is_named_by_audit_verify(lockbox: Lockbox, tmp_path: Path) -> None:
    database = f"sqlite://{tmp_path / 'lockbox.db'}"
    lockbox.run("migrate", "--database-url", database).ok()
    result = lockbox.run("audit", "verify", "--database-url", database, "--tenant", "nowhere")
    assert_clean_failure(result, "nowhere")


def test_serve_on_a_port_already_in_use_fails_and_names_the_port(
    lockbox: Lockbox, tmp_path: Path
) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = lockbox.run(
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite://{tmp_path / 'lockbox.db'}",
            timeout=30,
        )
    # No "no Traceback" check here: the app has started (and its background
    # tasks begun connecting) before the bind fails, and a connect cut short
    # by the immediate shutdown can leave aiosqlite a traceback to print.
    assert result.returncode != 0, result.describe()
    assert "address already in use" in result.stderr, result.describe()
    assert str(port) in result.stderr, result.describe()
