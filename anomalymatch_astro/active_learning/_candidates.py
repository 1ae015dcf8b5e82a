"""Candidates of a session: which objects to show next, one per system by default.

`candidate_table` is the candidate selection behind
`~anomalymatch_astro.active_learning.ActiveLearningSession.candidates`, and `session_systems`
the grouping of a session's cutouts into systems (computed once, on first use).  Both work
on the session's own state (scores, labels, embeddings).
"""

import logging

import numpy as np

from ..utils.exceptions import InvalidInputError
from ._grouping import members_of, resolve_systems
from ._strategies import (
    STRATEGIES,
    select_diverse,
    select_mix,
    select_similar,
    select_top,
    select_uncertain,
)

__all__ = ["candidate_table", "session_systems"]

log = logging.getLogger(__name__)


def session_systems(session):
    """The session's system ids (computed on first use, then cached in the session), or None."""
    if not session._systems_done:
        session._systems = resolve_systems(session.cutouts, session._systems_spec)
        session._systems_done = True
        if session._systems is not None:
            n_sys = int(session._systems.max(initial=-1)) + 1
            log.info("%d cutouts in %d systems", len(session._ids), n_sys)
    return session._systems


def _rank_of(session, rows):
    if session._scores is None:
        return np.zeros(len(rows), dtype=np.int64)
    key = np.where(np.isfinite(session._scores), -session._scores, np.inf)
    order = np.argsort(key, kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks[rows]


def candidate_table(session, n, strategy, like, pool, group):
    """The candidate table of `ActiveLearningSession.candidates`."""
    from astropy.table import QTable

    if strategy not in STRATEGIES:
        msg = f"strategy must be one of {STRATEGIES}, got {strategy!r}"
        raise InvalidInputError(msg)
    n = int(n)
    if n < 0:
        msg = f"n must be >= 0, got {n}"
        raise InvalidInputError(msg)
    exclude = session.labelled_mask()
    systems = session_systems(session) if group else None
    extra = {}
    if strategy == "similar":
        if like is None:
            msg = 'strategy="similar" needs like=<id> or like=[ids]'
            raise InvalidInputError(msg)
        query = session.cutouts.index_of([like] if isinstance(like, str) else list(like))
        if systems is not None:  # not the other pieces of the query objects themselves
            exclude = exclude | np.isin(systems, systems[query])
        rows, sim = select_similar(
            session.embeddings, query, n, exclude=exclude, center=session._center(), systems=systems
        )
        extra["similarity"] = sim
    else:
        if session._scores is None:
            msg = f'strategy {strategy!r} needs scores; call session.train() first (or use "similar")'
            raise InvalidInputError(msg)
        if strategy == "top":
            rows = select_top(session._scores, n, exclude=exclude, systems=systems)
        elif strategy == "uncertainty":
            rows = select_uncertain(session._scores, n, exclude=exclude, threshold=session._threshold, systems=systems)
        elif strategy == "diversity":
            rows = select_diverse(
                session._scores,
                session.embeddings,
                n,
                exclude=exclude,
                pool=pool,
                center=session._center(),
                systems=systems,
            )
        else:
            rows = select_mix(
                session._scores,
                session.embeddings,
                n,
                exclude=exclude,
                threshold=session._threshold,
                pool=pool,
                center=session._center(),
                systems=systems,
            )
    rows = np.asarray(rows, dtype=np.int64)
    table = QTable()
    table["id"] = session._ids[rows] if len(rows) else np.array([], dtype=str)
    table["score"] = session._scores[rows] if session._scores is not None else np.full(len(rows), np.nan)
    table["rank"] = _rank_of(session, rows)
    for name, values in extra.items():
        table[name] = values
    if systems is not None:
        _add_members(session, table, rows, systems)
    table.meta["strategy"] = strategy
    table.meta["cycle"] = session.cycle
    table.meta["grouped"] = systems is not None
    return table


def _add_members(session, table, rows, systems):
    """The ``system``, ``n_members`` and ``members`` columns of a grouped candidate table."""
    others = members_of(systems, rows, session._scores)
    table["system"] = systems[rows] if len(rows) else np.array([], dtype=np.int64)
    table["n_members"] = np.array([len(m) for m in others], dtype=np.int64)
    joined = [",".join(str(session._ids[m]) for m in ms) for ms in others]
    table["members"] = np.array(joined, dtype=str) if len(rows) else np.array([], dtype=str)
