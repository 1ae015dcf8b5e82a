"""Astronomaly loader for an anomalymatch_astro bundle (anomalymatch_astro {version}).

Run it from an Astronomaly checkout:

    python astronomaly/frontend/run_server.py /path/to/bundle/astronomaly_pipeline.py

The bundle is the folder of this file, or the folder named by the environment variable
ASTRONOMALY_BUNDLE.  Labels given in the UI are written to
<bundle>/astronomaly_output/ml_scores.csv, which this script prefers on a restart, and which
anomalymatch_astro.catalogs.import_astronomaly_labels reads back.  Astronomaly is imported only
inside run_pipeline(), so this file can be imported without it.
"""

import os

BUNDLE = os.environ.get("ASTRONOMALY_BUNDLE") or os.path.dirname(os.path.abspath(__file__))
IMAGE_DIR = os.path.join(BUNDLE, "images")
OUTPUT_DIR = os.path.join(BUNDLE, "astronomaly_output")
DISPLAY_IMAGE_SIZE = 128
FILENAME_COLUMNS = ("filename", "file", "path", "filepath", "file_name")


def _read_frame(path):
    """A parquet file of the bundle as a float64 DataFrame indexed by str ids."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if "id" in frame.columns:
        frame = frame.set_index("id")
    frame.index = frame.index.astype(str)
    frame.index.name = "id"
    frame.columns = [str(c) for c in frame.columns]
    return frame.astype("float64")


def _read_scores():
    import pandas as pd

    path = os.path.join(OUTPUT_DIR, "ml_scores.csv")
    if not os.path.exists(path):
        path = os.path.join(BUNDLE, "ml_scores.csv")
    scores = pd.read_csv(path, index_col=0, dtype={0: str})
    scores.index = scores.index.astype(str)
    scores.index.name = "id"
    scores = scores[["score", "human_label"]].copy()
    scores["score"] = scores["score"].astype("float64")
    scores["human_label"] = scores["human_label"].fillna(-1).astype("int64")
    return scores.sort_values("score", ascending=False)


def _read_metadata():
    import pandas as pd

    metadata = pd.read_csv(os.path.join(BUNDLE, "metadata.csv"), dtype=str, keep_default_na=False)
    metadata = metadata.set_index("id")
    for name in ("ra", "dec", "p_anomaly"):
        if name in metadata.columns:
            metadata[name] = pd.to_numeric(metadata[name], errors="coerce").astype("float64")
    drop = [c for c in metadata.columns if c.lower() in FILENAME_COLUMNS]
    return metadata.drop(columns=drop)


def run_pipeline():
    """Build what Astronomaly's front-end expects: dataset, features, scores, map, active learning."""
    from astronomaly.anomaly_detection.human_loop_learning import NeighbourScore
    from astronomaly.data_management.image_reader import ImageThumbnailsDataset

    os.makedirs(OUTPUT_DIR, exist_ok=True)
    metadata = _read_metadata()
    dataset = ImageThumbnailsDataset(directory=IMAGE_DIR, output_dir=OUTPUT_DIR,
                                     additional_metadata=metadata,
                                     display_image_size=DISPLAY_IMAGE_SIZE)
    anomaly_scores = _read_scores()
    features = _read_frame(os.path.join(BUNDLE, "features.parquet"))
    features = features.loc[anomaly_scores.index]
    visualisation = None
    vis_path = os.path.join(BUNDLE, "visualisation.parquet")
    if os.path.exists(vis_path):
        visualisation = _read_frame(vis_path)
        visualisation = visualisation.loc[visualisation.index.isin(anomaly_scores.index), ["0", "1"]]
    active_learning = NeighbourScore(alpha=1, output_dir=OUTPUT_DIR, force_rerun=True)
    return {"dataset": dataset,
            "features": features,
            "anomaly_scores": anomaly_scores,
            "visualisation": visualisation,
            "active_learning": active_learning}
