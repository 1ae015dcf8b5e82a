"""The workdir of ``anomalymatch-astro search``: its recorded state, its session, the tables and galleries.

Shared by the actions of `anomalymatch_astro.cli._search`.
"""

import os

from ._outputs import check_output, output_file

SEARCH_FILE = "search.json"  #: what ``W/search.json`` records (besides the session's own ``session.json``)


def _check_extension(path, *, csv=False):
    from ..catalogs import TABLE_FORMATS
    from ..utils.exceptions import InvalidInputError

    endings = [e for ends in TABLE_FORMATS.values() for e in ends] + ([".csv"] if csv else [])
    if not path.lower().endswith(tuple(endings)):
        msg = f"cannot tell the table format of {path}; end its name with one of {', '.join(endings)}"
        raise InvalidInputError(msg)


def _read_search(workdir):
    from ..utils import read_json

    path = os.path.join(workdir, SEARCH_FILE)
    if not os.path.exists(path):
        return {}  # a workdir made in Python: library defaults
    return read_json(path)


def _write_search(workdir, state):
    from ..utils import write_json_atomic

    write_json_atomic(os.path.join(workdir, SEARCH_FILE), state)


def _open(workdir, *, with_classifier=False, user=None):
    """Reopen the session; with the recorded classifier settings when no model is saved yet."""
    from ..active_learning import ActiveLearningSession
    from ..utils.exceptions import CheckpointError

    if not os.path.exists(os.path.join(workdir, "session.json")):
        msg = (
            f"{workdir} holds no search (no session.json); start one with "
            f"'anomalymatch-astro search init --workdir {workdir} --cutouts cutouts.h5'"
        )
        raise CheckpointError(msg)
    kwargs = {"user": user}
    if with_classifier and not os.path.isdir(os.path.join(workdir, "model")):
        settings = _read_search(workdir).get("classifier")
        if settings:
            from ..classifier import AnomalyClassifier

            kwargs["classifier"] = AnomalyClassifier(**settings)
    return ActiveLearningSession.open(workdir, **kwargs)


def _label_counts(session):
    words = list(session.labels.values())
    return words.count("anomaly"), words.count("normal")


def _candidate_table(session, n, strategy, like=None, *, group=True):
    """The next candidates with id, ra, dec, score, rank (and similarity; system, n_members, members when grouped)."""
    import numpy as np

    cands = session.candidates(n, strategy=strategy, like=like, group=group)
    table = cands["id", "score", "rank"]
    coords = session.cutouts.coords
    if coords is not None and len(cands):
        rows = session.cutouts.index_of(list(cands["id"]))
        table.add_column(coords.ra.deg[rows], name="ra", index=1)
        table.add_column(coords.dec.deg[rows], name="dec", index=2)
        table["ra"].unit = table["dec"].unit = "deg"
    for name in ("similarity", "system", "n_members", "members"):
        if name in cands.colnames:
            table[name] = cands[name]
    table.meta = {"strategy": strategy, "cycle": session.cycle, "workdir": session.workdir}
    table.meta["grouped"] = bool(cands.meta.get("grouped", False))
    table["id"] = np.asarray(table["id"]).astype(str)
    return table


def _gallery(session, table, path, title):
    from ..visualization import plot_gallery

    members = None
    if "n_members" in table.colnames:  # one tile per system, captioned with the count of the others
        members = {str(i): int(k) for i, k in zip(table["id"], table["n_members"])}
    fig = plot_gallery(
        session.cutouts,
        ids=list(table["id"]),
        scores=[float(s) for s in table["score"]],
        labels={str(i): f"#{int(r)}" for i, r in zip(table["id"], table["rank"])},
        ncols=8,
        title=title,
        members=members,
        group=False,  # the table has one entry per system already (or was asked for without grouping)
    )
    fig.savefig(path, dpi=110, format="png")


def _write_candidates(table, path, *, overwrite=False):
    """Write a candidate table; a .csv gets an empty ``label`` column to fill in for 'search label'."""
    from astropy.table import Table

    from ..catalogs import write_table

    if path.lower().endswith(".csv"):
        out = Table(table)
        out["label"] = [""] * len(out)
        with output_file(path, overwrite=overwrite) as tmp:
            out.write(tmp, format="ascii.csv")
    else:
        check_output(path, overwrite=overwrite)
        write_table(table, path, overwrite=True)


def _deg(value):
    return float(value.to_value("deg")) if hasattr(value, "to_value") else float(value)


def _print_rows(table, *, label=None):
    grouped = "n_members" in table.colnames
    head = f"  {'rank':>6} {'id':<16} {'ra':>11} {'dec':>11} {'score':>7}" + ("  members" if grouped else "")
    print(head + ("  label" if label else ""))
    for k, row in enumerate(table):
        ra = f"{_deg(row['ra']):11.6f}" if "ra" in table.colnames else f"{'':>11}"
        dec = f"{_deg(row['dec']):11.6f}" if "dec" in table.colnames else f"{'':>11}"
        more = int(row["n_members"]) if grouped else 0
        tail = f"  {f'+{more}' if more else '':>7}" if grouped else ""
        tail += f"  {label[k]}" if label else ""
        print(f"  {int(row['rank']):>6} {str(row['id']):<16} {ra} {dec} {float(row['score']):7.3f}{tail}")
