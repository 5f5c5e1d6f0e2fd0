from lockbox.store import queries as store
from tests.conftest import Live, World


async def test_world_is_seeded(world: World) -> None:
    assert await store.tenant_by_name("contoso") is not None


async def test_live_server_answers(live: Live, world: World) -> None:
    data = await live.http.data(world.token("contoso-admin"), "{ me { name } }")
    assert data["me"]["name"] == "contoso-admin"
