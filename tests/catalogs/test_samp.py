"""send_table_samp against a real SAMP hub on 127.0.0.1 with a receiving client."""

import threading

import pytest
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from anomalymatch_astro.catalogs import read_table, send_table_samp
from anomalymatch_astro.catalogs._samp import samp_module
from anomalymatch_astro.utils.exceptions import ArchiveError


@pytest.fixture
def hub(tmp_path):
    samp = samp_module()
    lockfile = tmp_path / "samp.lock"
    server = samp.SAMPHubServer(web_profile=False, lockfile=str(lockfile), addr="127.0.0.1")
    server.start()
    yield lockfile
    server.stop()


def test_send_table(hub):
    samp = samp_module()
    from importlib import import_module

    params = import_module(samp.__name__ + ".lockfile_helpers").read_lockfile(hub.as_uri())
    received = []
    done = threading.Event()
    rx = samp.SAMPIntegratedClient(name="receiver")
    rx.connect(hub_params=params)

    def on_call(private_key, sender_id, msg_id, mtype, params, extra):
        received.append((mtype, params))
        rx.reply(msg_id, {"samp.status": samp.SAMP_STATUS_OK, "samp.result": {}})
        done.set()

    try:
        rx.bind_receive_call("table.load.votable", on_call)
        table = QTable(
            {"id": ["a", "b"], "coord": SkyCoord([10, 20], [0, 1], unit="deg"), "score": [0.9, 0.1]},
            meta={"model": "m"},
        )
        replies = send_table_samp(table, hub_url=str(hub), timeout=10, name="cands")
        assert done.wait(10)
    finally:
        rx.disconnect()
    assert len(replies) == 1
    assert list(replies.values())[0]["samp.status"] == "samp.ok"
    mtype, params = received[0]
    assert mtype == "table.load.votable"
    assert params["name"] == "cands"
    assert params["url"].startswith("file://")
    back = read_table(params["url"][len("file://") :])
    assert back["id"].tolist() == ["a", "b"]
    assert isinstance(back["coord"], SkyCoord) and back.meta == {"model": "m"}


def test_no_hub(tmp_path):
    with pytest.raises(ArchiveError):
        send_table_samp(QTable({"id": ["a"]}), hub_url=str(tmp_path / "missing.lock"), timeout=1)
