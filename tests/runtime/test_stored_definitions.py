"""Definitions are kept with the flows: an engine reads flows of versions it has not
registered, and two engines cannot run different definitions under one name and version."""

from __future__ import annotations

import pytest
from blocking import open_engine
from runtime_support import QUALIFIED, SALES, SELLER

import bpf
from bpf.store import MemoryStore

V2 = SALES.replace("name: Deal\n", "name: Deal\nversion: 2\n", 1)


@pytest.fixture(params=["shared-memory", "sqlite",
                        pytest.param("postgres", marks=pytest.mark.postgres)])
def engines(request, tmp_path, kind, clock):
    """A factory of engines of ``kind`` on one store: a MemoryStore object shared by the
    engines, or a database."""
    if request.param == "shared-memory":
        target = MemoryStore()
    elif request.param == "sqlite":
        target = f"sqlite:///{tmp_path / 'bpf.db'}"
    else:
        target = request.getfixturevalue("postgres_url")
    made = []

    def make():
        made.append(open_engine(kind, target, clock=clock))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def test_an_engine_reads_flows_of_a_version_it_did_not_register(engines):
    first = engines()
    first.register(bpf.loads_process(SALES, source="deal.yaml"))
    deal = dict(QUALIFIED, id="opp-1")
    first.start("deal", deal, actor=SELLER).next(actor=SELLER)

    fresh = engines()
    fresh.register(bpf.loads_process(V2, source="deal-v2.yaml"))  # only version 2
    flow = fresh.flow("opp-1", "deal")
    assert (flow.version, flow.stage.id) == (1, "develop")
    assert [e.kind for e in flow.history] == ["start", "next"]
    assert flow.bind(deal).view(SELLER)["process"]["version"] == 1
    with pytest.raises(bpf.UnknownProcessError, match="from the store only"):
        flow.next(actor=SELLER)
    assert fresh.store.get_flow(flow.id).revision == 2
    assert fresh.migrate("deal", to_version=2, actor=SELLER) == 1
    assert fresh.flow("opp-1", "deal").version == 2


def test_two_engines_cannot_run_different_definitions_under_one_name_and_version(engines):
    engines().register(bpf.loads_process(SALES, source="deal.yaml"))
    changed = SALES.replace("name: Develop", "name: Develop it")
    with pytest.raises(bpf.RegistrationError, match="already stored with another definition"):
        engines().register(bpf.loads_process(changed, source="deal-changed.yaml"))
    again = engines()
    again.register(bpf.loads_process(SALES, source="deal-again.yaml"))  # the same: fine
    assert [p.version for p in again.processes()] == [1]
