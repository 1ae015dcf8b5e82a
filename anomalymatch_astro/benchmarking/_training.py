"""The training-step benchmark: the FixMatch step and `AnomalyClassifier.score` against the bare network.

The FixMatch step processes ``B + 2 * mu * B`` images (labelled, weak and strong unlabelled
views): sampling, augmentation, forward, loss, backward, optimiser step and the EMA update.
The bare forward+backward runs the same number of ready-made images through the same network
with a plain cross-entropy.  Scoring runs the full path (HDF5 shards read lazily,
normalisation, resizing, the EMA model) against the predict of the same inference path on a
ready batch of the same size.  All in one process, side by side.
"""

import os
import tempfile
import time

import numpy as np

__all__ = ["run_training_benchmark"]


def _timeit(fn, repeat):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def run_training_benchmark(
    *,
    image_size=64,
    cutout_size=64,
    batch_size=16,
    mu=5,
    steps=5,
    n_score=1024,
    score_batch=256,
    bands=3,
    backbone="tf_efficientnet_lite0",
    device=None,
):
    """Images per second of the FixMatch step and of scoring, each against the bare network.

    Parameters
    ----------
    image_size : int, optional
        Network input size.
    cutout_size : int, optional
        Cutout size in pixels (resized to ``image_size``).
    batch_size : int, optional
        Labelled images per FixMatch step (``B``).
    mu : int, optional
        Unlabelled to labelled ratio of the step.
    steps : int, optional
        FixMatch steps timed (and bare steps).
    n_score : int, optional
        Cutouts scored (at least 200 cutouts are made for training).
    score_batch : int, optional
        Batch size of scoring and of the bare forward pass.
    bands : int, optional
        Bands per cutout.
    backbone : str, optional
        timm model (pretrained weights when installed offline, else random: speed does not
        depend on them).
    device : str, optional
        torch device (default: CUDA when available, else CPU).

    Returns
    -------
    dict
        ``step_images_per_s``, ``bare_train_images_per_s``, ``step_vs_bare``,
        ``score_images_per_s``, ``bare_forward_images_per_s``, ``score_vs_bare``,
        ``images_per_step``, ``device``, ``torch_threads``, ``backbone`` and the settings.
    """
    import torch

    from ..classifier import AnomalyClassifier
    from ..cutouts import CutoutSet

    rng = np.random.default_rng(0)
    n = max(n_score, 200)
    data = rng.lognormal(size=(n, bands, cutout_size, cutout_size)).astype(np.float32)
    cs = CutoutSet.from_arrays(data)
    labels = {cs.ids[i]: ("anomaly" if i < 5 else "normal") for i in range(40)}
    clf = AnomalyClassifier(
        backbone=backbone, image_size=image_size, batch_size=batch_size, mu=mu, device=device, max_unlabeled=1000
    )
    dev = clf.device
    clf.fit(cs[:200], labels, iterations=1, progress=False)  # builds, adapts BN, warm-starts the head

    per_step = batch_size * (1 + 2 * mu)
    t0 = time.perf_counter()
    clf.fit(cs[:200], labels, iterations=steps, progress=False)
    t_fit = time.perf_counter() - t0
    # the fit includes set-up (normalising the 160 unlabelled, the probe); time it alone and subtract
    t0 = time.perf_counter()
    clf.fit(cs[:200], labels, iterations=0, progress=False)
    t_setup = time.perf_counter() - t0
    step_rate = per_step * steps / max(t_fit - t_setup, 1e-9)

    model = clf.model
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    x = torch.randn(per_step, bands, image_size, image_size, device=dev)
    y = torch.randint(0, 2, (per_step,), device=dev)

    def bare_train():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    bare_train_rate = per_step / _timeit(bare_train, steps)
    model.eval()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.h5")
        cs[:n_score].to_hdf5(path)
        lazy = CutoutSet.from_hdf5(path)
        t_score = _timeit(lambda: clf.score(lazy, batch_size=score_batch, progress=False), 1)
    score_rate = n_score / t_score
    xb = torch.rand(score_batch, bands, image_size, image_size)

    with clf.inference() as predict:  # the settings of score(): on a GPU channels-last + bf16

        def bare_forward():
            predict(xb).cpu()

        bare_score_rate = score_batch / _timeit(bare_forward, max(1, n_score // score_batch))

    return {
        "step_images_per_s": step_rate,
        "bare_train_images_per_s": bare_train_rate,
        "step_vs_bare": step_rate / bare_train_rate,
        "score_images_per_s": score_rate,
        "bare_forward_images_per_s": bare_score_rate,
        "score_vs_bare": score_rate / bare_score_rate,
        "images_per_step": per_step,
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
        "backbone": clf.backbone,
        "bands": bands,
        "cutout_size": cutout_size,
        "image_size": image_size,
        "batch_size": batch_size,
        "mu": mu,
        "score_batch": score_batch,
    }
