"""The Relay compiler accepts the committed schema: `@connection` paging in
both directions, `@refetchable` fragments (through `node(id:)`), and a
`node` lookup (client-examples/stock/relay)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "client-examples" / "stock"
PROJECT = STOCK / "relay"
COMPILER = STOCK / "node_modules" / "relay-compiler" / "cli.js"
SCHEMA = ROOT / "schema" / "schema.graphql"

node = shutil.which("node")
pytestmark = pytest.mark.skipif(node is None, reason="node is not installed")


def compile_relay(tmp_path: Path, schema: Path) -> subprocess.CompletedProcess[str]:
    """Run relay-compiler on a copy of the project against `schema`."""
    assert node is not None
    assert COMPILER.is_file(), f"{COMPILER} is missing: run npm ci in {STOCK}"
    project = tmp_path / "relay"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__generated__"))
    config = json.loads((project / "relay.config.json").read_text())
    config["schema"] = str(schema)
    (project / "relay.config.json").write_text(json.dumps(config))
    (project / config["artifactDirectory"]).mkdir(parents=True)
    return subprocess.run(
        [node, str(COMPILER), "relay.config.json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_relay_compiler_accepts_the_schema(tmp_path: Path) -> None:
    result = compile_relay(tmp_path, SCHEMA)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    generated = {p.name for p in (tmp_path / "relay" / "src" / "__generated__").iterdir()}
    # The refetch queries Relay made for the @refetchable fragments, and the
    # fragments with their connections.
    assert {
        "RequestActivityPaginationQuery.graphql.js",
        "RequestListPaginationQuery.graphql.js",
        "RequestActivity_request.graphql.js",
        "RequestList_query.graphql.js",
        "AppNodeQuery.graphql.js",
    } <= generated, generated
    refetch = (
        tmp_path / "relay" / "src" / "__generated__" / "RequestActivityPaginationQuery.graphql.js"
    )
    assert "node(id: $id)" in refetch.read_text()


def test_the_compiler_refuses_a_schema_without_relay_support(tmp_path: Path) -> None:
    """The check can fail: with no `node` and no backward paging it does."""
    text = SCHEMA.read_text()
    crippled = tmp_path / "crippled.graphql"
    crippled.write_text(
        text.replace("node(id: ID!): Node", "nodeWasRemoved(id: ID!): Node").replace(
            "hasPreviousPage: Boolean!", "hasPreviousPageWasRemoved: Boolean!"
        )
    )
    assert crippled.read_text() != text
    result = compile_relay(tmp_path, crippled)
    assert result.returncode != 0
    assert "node" in result.stdout + result.stderr
