"""The widget's Python side, without a browser: messages in, states out."""

import pytest

pytest.importorskip("anywidget")

from anomalymatch_astro.ui import LabelWidget  # noqa: E402


@pytest.fixture
def widget(session, monkeypatch):
    w = LabelWidget(session, page_size=6)
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append(content))
    w.sent = sent
    yield w
    w.close()


def test_module_and_traits(widget):
    assert "export default" in widget._esm and "stopPropagation" in widget._esm
    assert ".amui-tile" in widget._css
    assert "keys" not in widget.keys  # a synced trait named keys breaks widgets
    assert widget.session.cycle == 1


def test_label_undo_retrain_through_messages(widget, session):
    widget._handle_message(widget, {"action": "state"}, [])
    st = widget.sent[-1]["state"]
    assert widget.sent[-1]["type"] == "state" and len(st["tiles"]) == 6 and st["images"]
    ids = [t["id"] for t in st["tiles"]]
    widget._handle_message(widget, {"action": "label", "id": ids[0], "label": "anomaly"}, [])
    widget._handle_message(widget, {"action": "label", "id": ids[1], "label": "normal"}, [])
    assert session.labels[ids[0]] == "anomaly" and session.labels[ids[1]] == "normal"
    widget._handle_message(widget, {"action": "undo"}, [])
    assert ids[1] not in session.labels
    assert widget.sent[-1]["state"]["tiles"][1]["label"] is None
    n = len(widget.sent)
    widget._handle_message(widget, {"action": "retrain", "mode": "fast"}, [])
    # first a "training" state (the progress indicator), then the result
    assert len(widget.sent) == n + 2
    assert widget.sent[n]["state"]["training"]["mode"] == "fast"
    done = widget.sent[n + 1]["state"]
    assert done["training"] is None and done["last_train"]["mode"] == "fast" and done["images"]
    assert done["cycle"] == 2 and ids[0] not in [t["id"] for t in done["tiles"]]
    assert widget.updates == len(widget.sent)


def test_bad_messages_reported(widget, session):
    labels = session.labels
    st = widget.handle({"action": "label", "id": "src050"})
    assert "label must be one of" in st["error"]
    widget._handle_message(widget, ["not", "a", "dict"], [])
    assert "JSON object" in widget.sent[-1]["state"]["error"]
    widget._handle_message(widget, {"action": "retrain", "mode": "slow"}, [])
    assert "mode must be one of" in widget.sent[-1]["state"]["error"]
    assert session.labels == labels


def test_write_label_notebook_refuses_an_existing_file(tmp_path):
    from anomalymatch_astro.ui import write_label_notebook
    from anomalymatch_astro.utils.exceptions import OutputExistsError

    target = tmp_path / "label.ipynb"
    target.write_text("mine")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_label_notebook(tmp_path, target)
    assert target.read_text() == "mine"
    write_label_notebook(tmp_path, target, overwrite=True)
    assert '"cells"' in target.read_text()
