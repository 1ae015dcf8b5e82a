"""One protocol run: every method on one set, anomaly class, seed and variant (used by `run_protocol`)."""

import logging
import time

import numpy as np

__all__ = ["METHODS", "VARIANTS"]

log = logging.getLogger(__name__)

#: method name -> (session training mode, fast head, rotation-averaged embeddings, backbone stages)
METHODS = {
    "probe": ("fast", "logistic", False, ()),
    "knn": ("fast", "knn", False, ()),
    "spreading": ("fast", "spreading", False, ()),
    "ensemble": ("fast", "ensemble", False, ()),
    "ensemble_rot": ("fast", "ensemble", True, ()),
    "multilevel": ("fast", "ensemble", True, (-2, -1)),
    "fixmatch": ("fixmatch", "ensemble", False, ()),
    "both": ("both", "ensemble", False, ()),
}

#: variant name -> options: ``mask_neighbours``, ``keep_blended`` and ``cutout_size`` (passed to the set:
#: real-sky sets only), ``background`` (of the classifier's `~anomalymatch_astro.normalization.Normalizer`),
#: ``group`` (top lists one per system), ``zoom`` (centre views of the session's embeddings), ``profile``
#: (the radial residual profile appended to them)
VARIANTS = {
    "default": {},
    "mask": {"mask_neighbours": True},
    "background": {"background": "annulus"},
    "group": {"group": True},
    "crop": {"cutout_size": 32},
    "crop_mask": {"cutout_size": 32, "mask_neighbours": True},
    "zoom": {"zoom": (0.5,)},
    "zoom2": {"zoom": (0.5, 0.375)},
    "profile": {"zoom": (0.5,), "profile": True},
    "mask_zoom": {"mask_neighbours": True, "zoom": (0.5,)},
    "mask_profile": {"mask_neighbours": True, "zoom": (0.5,), "profile": True},
    "mask_blend": {"mask_neighbours": True, "keep_blended": True, "zoom": (0.5,), "profile": True},
}


def _load(name, anomaly_class, seed, options):
    from ..datasets import load_benchmark_set

    kwargs = dict(options)
    kwargs.pop("held_out", None)
    if name.startswith("xdf_"):
        return load_benchmark_set("real_sky", seed=seed, anomaly=anomaly_class, progress=False, **kwargs)
    if name == "digits":
        kwargs["anomaly_digit"] = anomaly_class
    elif name in ("morphology", "galaxy_mnist", "miniimagenet"):
        kwargs["anomaly_class"] = anomaly_class
    return load_benchmark_set("image_folder" if name == "miniimagenet" else name, seed=seed, **kwargs)


def _run_one(name, anomaly_class, seed, variant, options, n_anom, n_norm, methods, held_out, **kw):
    """Every method on one set, anomaly class, seed and variant: one row per method and cycle."""
    from ..active_learning import ActiveLearningSession, simulate_oracle
    from ..classifier import AnomalyClassifier
    from ..datasets import start_labels
    from ..normalization import Normalizer

    opts = VARIANTS[variant]
    set_options = dict(options)
    set_options.update({k: v for k, v in opts.items() if k in ("mask_neighbours", "keep_blended", "cutout_size")})
    held_out = held_out or set_options.get("held_out", 0.0)
    # variants that change neither the pixels nor the normalisation (default, group) share set and embeddings
    shared_key = tuple(sorted((k, v) for k, v in opts.items() if k != "group"))
    cache = kw.get("cache")
    if cache is not None and shared_key in cache:
        cutouts, embeddings = cache[shared_key]
    else:
        cutouts, embeddings = _load(name, anomaly_class, seed, set_options), {}
        if cache is not None:
            cache[shared_key] = (cutouts, embeddings)
    table = cutouts.table
    truth = np.asarray(table["is_anomaly"], dtype=bool)
    systems = np.asarray(table["system"]) if "system" in table.colnames else None
    artefacts = np.asarray(table["artefact"], dtype=bool) if "artefact" in table.colnames else None
    test = _held_out_mask(truth, held_out, seed)
    pool = np.flatnonzero(~test)
    labels = start_labels(
        truth[pool], ids=np.asarray(cutouts.ids)[pool], n_anomalies=n_anom, n_normals=n_norm, seed=seed
    )
    size = kw["image_size"] or min(64, cutouts.image_shape[0])
    normalizer = Normalizer(background=opts["background"]) if opts.get("background") else None
    rows = []
    # methods with extra feature levels first: the others reuse their first block
    for method in sorted(methods, key=lambda m: not METHODS[m][3]):
        mode, head, rotation_average, stages = METHODS[method]
        shared = (rotation_average, stages)
        if shared not in embeddings and not stages:
            for (rot, more), (emb, blocks) in embeddings.items():
                if rot == rotation_average and more:  # its head block (of each view) is these embeddings
                    views = 1 + len(opts.get("zoom", ()))
                    embeddings[shared] = _head_blocks(emb, blocks, views, profile=bool(opts.get("profile")))
                    break
        emb, blocks = embeddings.get(shared, (None, None))  # the same frozen embeddings
        session = ActiveLearningSession(
            cutouts,
            labels=labels,
            classifier=AnomalyClassifier(image_size=size, seed=seed, normalizer=normalizer),
            head=head,
            default_mode=mode,
            rotation_average=rotation_average,
            feature_stages=stages,
            zoom=opts.get("zoom", ()),
            profile=bool(opts.get("profile")),
            embeddings=emb,
            embedding_blocks=blocks,
            systems=False,
        )
        t0 = time.perf_counter()
        records = simulate_oracle(
            session,
            truth,
            cycles=kw["cycles"],
            iterations=kw["iterations"],
            held_out=test,
            systems=systems,
            artefacts=artefacts,
            group=bool(opts.get("group")) and systems is not None,
            progress=kw["progress"],
        )
        if mode == "fast" and shared not in embeddings:
            embeddings[shared] = (session.embeddings, session.embedding_blocks)
        for r in records:
            rows.append(
                {
                    "set": name,
                    "anomaly_class": str(anomaly_class),
                    "seed": seed,
                    "method": method,
                    "variant": variant,
                    "held_out": float(held_out),
                    "cycle": r["cycle"],
                    "n_labelled": r["n_labelled"],
                    "anomaly_fraction": r.get("anomaly_fraction", np.nan),
                    "auroc": r.get("auroc", np.nan),
                    "auprc": r.get("auprc", np.nan),
                    "precision_at_1pct": r.get("precision_at_1pct", np.nan),
                    "found_in_first_100": float(r.get("found_in_first_100", np.nan)),
                    "distinct_top50": float(r.get("distinct_top50", np.nan)),
                    "artefacts_top24": float(r.get("artefacts_top24", np.nan)),
                    "train_seconds": r["train_seconds"],
                }
            )
        log.info(
            "%s/%s seed %d %s (%s): AUROC %.3f -> %.3f (%.0f s)",
            name,
            anomaly_class,
            seed,
            method,
            variant,
            records[0]["auroc"],
            records[-1]["auroc"],
            time.perf_counter() - t0,
        )
        session.close()
    return rows


def _head_blocks(emb, blocks, views, *, profile=False):
    """The head-feature block of each view of multilevel embeddings, plus the last (profile) block if any.

    Returns the columns and their widths (None for a single block).
    """
    per_view = (len(blocks) - int(profile)) // views
    starts = np.cumsum([0, *blocks])
    cols = [np.arange(starts[v * per_view], starts[v * per_view] + blocks[v * per_view]) for v in range(views)]
    widths = [blocks[v * per_view] for v in range(views)]
    if profile:
        cols.append(np.arange(starts[-2], starts[-1]))
        widths.append(blocks[-1])
    head = np.ascontiguousarray(emb[:, np.concatenate(cols)])
    return head, (widths if len(widths) > 1 else None)


def _held_out_mask(truth, fraction, seed):
    """A stratified random test split: ``fraction`` of the anomalies and of the normals."""
    test = np.zeros(len(truth), dtype=bool)
    if not fraction:
        return test
    rng = np.random.default_rng([int(seed), 7])
    for group in (np.flatnonzero(truth), np.flatnonzero(~truth)):
        test[rng.choice(group, int(round(fraction * len(group))), replace=False)] = True
    return test
