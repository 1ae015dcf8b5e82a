import hashlib
import json
import os

import numpy as np
import pytest

from anomalymatch_astro import CutoutSet


class FakeClassifier:
    """A tiny stand-in for AnomalyClassifier: flattened pixels as embeddings, logistic 'FixMatch'."""

    def __init__(self, seed=0):
        self.seed = seed
        self.embed_calls = 0
        self.fit_calls = 0
        self.coef = None
        self.intercept = 0.0

    @property
    def model_hash(self):
        h = hashlib.sha256(b"fake")
        if self.coef is not None:
            h.update(np.asarray(self.coef, dtype=np.float64).tobytes())
        return h.hexdigest()

    @property
    def is_fitted(self):
        return self.coef is not None

    def embed(self, cutouts, *, batch_size=256):
        self.embed_calls += 1
        return cutouts.data.reshape(len(cutouts), -1).astype(np.float32)

    def fit(self, cutouts, labels, *, unlabeled=None, iterations=None, progress=True):
        from sklearn.linear_model import LogisticRegression

        from anomalymatch_astro.utils import parse_labels

        parsed = parse_labels(labels, known_ids=cutouts.ids, require_both=True)
        x = cutouts[list(parsed)].data.reshape(len(parsed), -1)
        model = LogisticRegression(C=0.05, class_weight="balanced", max_iter=500)
        model.fit(x, list(parsed.values()))
        self.coef, self.intercept = model.coef_[0], float(model.intercept_[0])
        self.fit_calls += 1
        return self

    def score(self, cutouts, *, batch_size=256, progress=False):
        z = cutouts.data.reshape(len(cutouts), -1) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def save(self, path):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "fake.json"), "w") as f:
            json.dump({"coef": list(map(float, self.coef)), "intercept": self.intercept}, f)

    @classmethod
    def load(cls, path):
        with open(os.path.join(path, "fake.json")) as f:
            state = json.load(f)
        clf = cls()
        clf.coef, clf.intercept = np.asarray(state["coef"]), state["intercept"]
        return clf


@pytest.fixture
def fake_classifier():
    return FakeClassifier()


def _digits_set(n_normal=240, n_anomaly=12, seed=0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    anom = rng.choice(np.flatnonzero(digits.target == 0), n_anomaly, replace=False)
    norm = rng.choice(np.flatnonzero(digits.target != 0), n_normal, replace=False)
    rows = np.concatenate([anom, norm])
    rng.shuffle(rows)
    images = digits.images[rows].astype(np.float32) / 16.0
    truth = digits.target[rows] == 0
    return CutoutSet.from_arrays(images[:, None], ids=[f"d{i:03d}" for i in range(len(rows))]), truth


@pytest.fixture
def digits():
    """(CutoutSet of 8x8 digits with 0 as the anomaly at ~5%, is_anomaly) — real data, tiny."""
    return _digits_set()


@pytest.fixture
def start_labels(digits):
    cs, truth = digits
    ids = cs.ids
    anomalies = ids[truth][:3]
    normals = ids[~truth][:20]
    return {**{i: "anomaly" for i in anomalies}, **{i: "normal" for i in normals}}


@pytest.fixture
def fake_cls():
    """The stand-in classifier class (for FakeClassifier.load)."""
    return FakeClassifier
