"""Loaders of local GalaxyMNIST and miniImageNet-style copies, on tiny fake copies built in tmp_path."""

import logging
import re

import h5py
import numpy as np
import pytest
from PIL import Image

from anomalymatch_astro import CutoutSet
from anomalymatch_astro.datasets import (
    GALAXY_MNIST_CLASSES,
    find_local_sets,
    load_benchmark_set,
    load_galaxy_mnist,
    load_image_folder,
)
from anomalymatch_astro.utils.exceptions import InvalidInputError

TRAIN_COUNTS = (40, 38, 42, 40)  # images per GalaxyMNIST class in the fake train file
TEST_COUNTS = (10, 10, 10, 10)


# ----------------------------------------------------------------------------- fake GalaxyMNIST
def fake_galaxy_images(counts, seed, size=64):
    """uint8 (N, size, size, 3) images: per-image brightness and a class-dependent red level, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), counts).astype(np.uint8)
    labels = labels[rng.permutation(len(labels))]
    level = rng.uniform(30, 200, (len(labels), 1, 1, 3))
    level[..., 0] = 20 + 50 * labels[:, None, None]  # red encodes the class
    images = level + rng.normal(0, 8, (len(labels), size, size, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def write_galaxy_file(path, images, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)
    return path


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory):
    """A folder with a fake train_dataset.hdf5 and test_dataset.hdf5, and the source arrays."""
    root = tmp_path_factory.mktemp("gmnist")
    train = fake_galaxy_images(TRAIN_COUNTS, seed=1)
    test = fake_galaxy_images(TEST_COUNTS, seed=2)
    write_galaxy_file(root / "train_dataset.hdf5", *train)
    write_galaxy_file(root / "test_dataset.hdf5", *test)
    return root, {"train": train, "test": test}


def source_rows(cs):
    """(split, index in the file) of every row, parsed from the ids."""
    out = []
    for i in cs.ids:
        m = re.fullmatch(r"gmnist_(\w+)_(\d{6})", str(i))
        assert m is not None, i
        out.append((m.group(1), int(m.group(2))))
    return out


def assert_matches_source(cs, sources):
    """Pixels, labels and classes of every row equal those of the source image its id names."""
    for k, (split, idx) in enumerate(source_rows(cs)):
        images, labels = sources[split]
        np.testing.assert_array_equal(cs.data[k], images[idx].transpose(2, 0, 1).astype(np.float32) / 255)
        assert cs.table["label"][k] == labels[idx]
        assert cs.table["class"][k] == GALAXY_MNIST_CLASSES[labels[idx]]
        assert cs.table["split"][k] == split


def class_counts(cs):
    return {c: int(np.sum(cs.table["class"] == c)) for c in sorted(set(cs.table["class"].tolist()))}


def test_galaxy_mnist_default(galaxy):
    root, sources = galaxy
    cs = load_galaxy_mnist(root)
    assert isinstance(cs, CutoutSet)
    # 25%: every class contributes equally, as many as the smallest normal class (38) allows
    assert cs.shape == (152, 3, 64, 64)
    assert cs.data.dtype == np.float32
    assert cs.data.min() >= 0.0 and cs.data.max() <= 1.0
    assert cs.bands == ("g", "r", "z")
    assert class_counts(cs) == dict.fromkeys(GALAXY_MNIST_CLASSES, 38)
    truth = np.asarray(cs.table["is_anomaly"])
    assert truth.dtype == bool and truth.sum() == 38
    np.testing.assert_array_equal(truth, cs.table["class"] == "unbarred_spiral")
    assert len(set(cs.ids.tolist())) == len(cs)
    assert {s for s, _ in source_rows(cs)} == {"train"}
    assert_matches_source(cs, sources)
    # shuffled, not in file order
    assert [i for _, i in source_rows(cs)] != sorted(i for _, i in source_rows(cs))
    assert cs.meta["benchmark"] == "galaxy_mnist"
    assert cs.meta["anomaly_class"] == "unbarred_spiral"
    assert cs.meta["anomaly_fraction"] == 0.25
    assert cs.meta["image_size"] == 64 and cs.meta["split"] == "train" and cs.meta["seed"] == 0


def test_galaxy_mnist_fraction_and_int_class(galaxy):
    root, sources = galaxy
    cs = load_galaxy_mnist(root, anomaly_class=1, anomaly_fraction=0.1, seed=3)
    truth = np.asarray(cs.table["is_anomaly"])
    # normals: the smallest of classes 0, 2, 3 has 40 -> 120; anomalies 120 / 9 -> 13
    assert len(cs) == 133 and truth.sum() == 13
    assert abs(truth.mean() - 0.1) <= 1 / len(cs)
    np.testing.assert_array_equal(truth, cs.table["label"] == 1)
    assert set(cs.table["class"][truth]) == {"smooth_cigar"}
    assert cs.meta["anomaly_class"] == "smooth_cigar"
    assert class_counts(cs)["smooth_round"] == class_counts(cs)["edge_on_disk"] == 40
    assert_matches_source(cs, sources)


def test_galaxy_mnist_ids_stable_across_seeds(galaxy):
    root, _ = galaxy
    a = load_galaxy_mnist(root, anomaly_fraction=0.1, seed=0)
    b = load_galaxy_mnist(root, anomaly_fraction=0.1, seed=1)
    c = load_galaxy_mnist(root, anomaly_fraction=0.1, seed=0)
    np.testing.assert_array_equal(a.ids, c.ids)
    np.testing.assert_array_equal(a.data, c.data)
    assert a.ids.tolist() != b.ids.tolist()  # another draw and order ...
    common = np.intersect1d(a.ids, b.ids)
    assert len(common) > 100
    # ... but an id always names the same image
    np.testing.assert_array_equal(a[list(common)].data, b[list(common)].data)
    assert set(a.ids[a.table["is_anomaly"]]) != set(b.ids[b.table["is_anomaly"]])


def test_galaxy_mnist_both_splits_and_cap(galaxy, monkeypatch):
    from anomalymatch_astro.datasets import _galaxy_mnist

    root, sources = galaxy
    monkeypatch.setattr(_galaxy_mnist, "_HDF5_CHUNK", 7)  # many small reads, dense and sparse
    cs = load_galaxy_mnist(root, split="both", n_per_class=20, anomaly_class="edge_on_disk", progress=True)
    assert len(cs) == 80
    assert class_counts(cs) == dict.fromkeys(GALAXY_MNIST_CLASSES, 20)
    splits = {s for s, _ in source_rows(cs)}
    assert splits == {"train", "test"}
    assert cs.meta["split"] == "train+test"
    assert len(cs.meta["source"]) == 2
    assert_matches_source(cs, sources)
    test_only = load_galaxy_mnist(root, split="test")
    assert len(test_only) == 40 and set(test_only.table["split"]) == {"test"}
    assert_matches_source(test_only, sources)


@pytest.mark.parametrize("size", [16, 80])
def test_galaxy_mnist_image_size(galaxy, size):
    root, sources = galaxy
    cs = load_galaxy_mnist(root, image_size=size, n_per_class=5)
    assert cs.shape == (20, 3, size, size)
    assert cs.meta["image_size"] == size
    assert cs.data.min() >= 0.0 and cs.data.max() <= 1.0
    # resizing keeps every image's mean colour (and so its class's red level)
    for k, (split, idx) in enumerate(source_rows(cs)):
        images, labels = sources[split]
        expected = images[idx].mean(axis=(0, 1)) / 255
        np.testing.assert_allclose(cs.data[k].mean(axis=(1, 2)), expected, atol=0.01)
        assert round((cs.data[k, 0].mean() * 255 - 20) / 50) == labels[idx]
    if size == 16:  # shrinking 4x is antialiased: the pixel noise (8/255 rms) averages down well below half
        assert cs.data.std(axis=(2, 3)).max() < 0.01


def test_galaxy_mnist_single_file_and_torchvision_layout(galaxy, tmp_path):
    _, sources = galaxy
    images, labels = sources["test"]
    f = write_galaxy_file(tmp_path / "subset.hdf5", images, labels)
    cs = load_galaxy_mnist(f, split="train")  # split is taken from the file name
    assert len(cs) == 40 and set(cs.table["split"]) == {"subset"}
    assert str(cs.ids[0]).startswith("gmnist_subset_")
    assert_matches_source(cs, {"subset": (images, labels)})
    write_galaxy_file(tmp_path / "tv" / "GalaxyMNIST" / "raw" / "test_dataset.hdf5", images, labels)
    cs = load_galaxy_mnist(tmp_path / "tv", split="test")
    assert len(cs) == 40 and set(cs.table["split"]) == {"test"}
    write_galaxy_file(tmp_path / "hr" / "GalaxyMNISTHighrez" / "raw" / "train_dataset.hdf5", images, labels)
    assert len(load_galaxy_mnist(tmp_path / "hr")) == 40


def test_galaxy_mnist_channels_first(galaxy, tmp_path):
    _, sources = galaxy
    images, labels = sources["test"]
    f = write_galaxy_file(tmp_path / "test_dataset.hdf5", images.transpose(0, 3, 1, 2), labels)
    cs = load_galaxy_mnist(f)
    assert cs.shape == (40, 3, 64, 64)
    assert_matches_source(cs, {"test": (images, labels)})


def _write_raw(path, **datasets):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)
    return path


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (dict(images=np.zeros((4, 8, 8, 3), np.uint8)), "no 'labels' dataset"),
        (dict(pixels=np.zeros((4, 8, 8, 3), np.uint8)), "no 'images' or 'labels' dataset"),
        (dict(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.zeros(5, np.uint8)), "one label per image"),
        (dict(images=np.zeros((4, 8, 8), np.uint8), labels=np.zeros(4, np.uint8)), r"shape \(4, 8, 8\)"),
        (dict(images=np.zeros((4, 8, 8, 3), np.float32), labels=np.zeros(4, np.uint8)), "expected uint8"),
        (dict(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array([0, 1, 2, 7])), "integers 0-3"),
    ],
)
def test_galaxy_mnist_bad_files(tmp_path, content, match):
    _write_raw(tmp_path / "train_dataset.hdf5", **content)
    with pytest.raises(InvalidInputError, match=match) as err:
        load_galaxy_mnist(tmp_path)
    assert "train_dataset.hdf5" in str(err.value)


def test_galaxy_mnist_corrupt_gz_and_pickle(tmp_path):
    (tmp_path / "train_dataset.hdf5").write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(InvalidInputError, match="train_dataset.hdf5.*not a readable HDF5 file"):
        load_galaxy_mnist(tmp_path)
    gz = tmp_path / "gz"
    gz.mkdir()
    (gz / "train_dataset.hdf5.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(InvalidInputError, match="gunzip train_dataset.hdf5.gz"):
        load_galaxy_mnist(gz)
    with pytest.raises(InvalidInputError, match="gzip-compressed"):
        load_galaxy_mnist(gz / "train_dataset.hdf5.gz")
    pkl = tmp_path / "galaxy_mnist.pkl"
    pkl.write_bytes(b"\x80\x04.")
    with pytest.raises(InvalidInputError, match="pickle file.*run arbitrary code.*npz"):
        load_galaxy_mnist(pkl)


def test_galaxy_mnist_missing_paths(galaxy, tmp_path):
    root, _ = galaxy
    with pytest.raises(InvalidInputError, match="(?s)does not exist.*Layouts accepted"):
        load_galaxy_mnist(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="found no GalaxyMNIST file"):
        load_galaxy_mnist(tmp_path)
    only_train = tmp_path / "only_train"
    write_galaxy_file(only_train / "train_dataset.hdf5", *fake_galaxy_images((2, 2, 2, 2), seed=0, size=8))
    with pytest.raises(InvalidInputError, match="no test_dataset.hdf5 for split='both'"):
        load_galaxy_mnist(only_train, split="both")
    with pytest.raises(InvalidInputError, match="split must be"):
        load_galaxy_mnist(root, split="validation")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(anomaly_class="spiral"), "must be one of"),
        (dict(anomaly_class=4), "must be one of"),
        (dict(anomaly_class=True), "must be one of"),
        (dict(anomaly_fraction=0.0), "anomaly_fraction must be in"),
        (dict(n_per_class=0), "n_per_class must be"),
        (dict(image_size=4), "image_size must be"),
    ],
)
def test_galaxy_mnist_bad_arguments(galaxy, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        load_galaxy_mnist(galaxy[0], **kwargs)


def test_galaxy_mnist_missing_classes(tmp_path, caplog):
    images, labels = fake_galaxy_images((5, 5, 5, 0), seed=0, size=8)
    write_galaxy_file(tmp_path / "no_spirals" / "train_dataset.hdf5", images, labels)
    with pytest.raises(InvalidInputError, match="no image of the anomaly class 'unbarred_spiral'"):
        load_galaxy_mnist(tmp_path / "no_spirals")
    # an empty normal class is left out (logged), the others still give the set
    with caplog.at_level(logging.WARNING, logger="anomalymatch_astro.datasets"):
        cs = load_galaxy_mnist(tmp_path / "no_spirals", anomaly_class="smooth_round")
    assert "unbarred_spiral" in caplog.text
    assert set(cs.table["class"]) == {"smooth_round", "smooth_cigar", "edge_on_disk"}
    images, labels = fake_galaxy_images((0, 0, 0, 5), seed=0, size=8)
    write_galaxy_file(tmp_path / "only_spirals" / "train_dataset.hdf5", images, labels)
    with pytest.raises(InvalidInputError, match="no image of any normal class"):
        load_galaxy_mnist(tmp_path / "only_spirals")


# ----------------------------------------------------------------------------- fake image folders
CLASS_CODES = {"n01": 20, "n02": 70, "n03": 120, "n04": 170}


def fake_image(cls, number, seed, size=(24, 20)):
    """RGB uint8 image (height, width): red encodes the class, green the file number, blue is noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = CLASS_CODES[cls]
    img[..., 1] = 10 * number
    img[..., 2] = rng.integers(0, 256, (h, w))
    return img


def save(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory):
    """torchvision ImageFolder layout: n01 (12 png), n02 (12 png + 1 in a subfolder), n03 (10 png + 2 .JPG)."""
    root = tmp_path_factory.mktemp("imagefolder")
    for c in ("n01", "n02", "n03"):
        for i in range(12):
            ext = ".JPG" if c == "n03" and i >= 10 else ".png"
            save(root / c / f"img{i:02d}{ext}", fake_image(c, i, seed=i))
    save(root / "n02" / "extra" / "img12.png", fake_image("n02", 12, seed=12))
    (root / "n01" / "notes.txt").write_text("not an image")
    (root / "n01" / ".hidden.png").write_bytes(b"not an image either")
    (root / ".cache").mkdir()
    return root


def check_encoded(cs, *, tol=0.5):
    """Class (red) and file number (green) in the pixels agree with the table and the ids."""
    red = cs.data[:, 0].mean(axis=(1, 2)) * 255
    green = cs.data[:, 1].mean(axis=(1, 2)) * 255
    for k in range(len(cs)):
        assert abs(red[k] - CLASS_CODES[cs.table["class"][k]]) <= tol
        number = int(re.search(r"img(\d+)", str(cs.ids[k])).group(1))
        assert abs(green[k] - 10 * number) <= tol
        assert str(cs.ids[k]) == re.sub(r"\.\w+$", "", str(cs.table["file"][k])).replace("/", ":")


def test_image_folder_class_folders(class_folders):
    cs = load_image_folder(class_folders, anomaly_class="n03", anomaly_fraction=0.25, image_size=16)
    # normals: 12 of n01 and 12 of n02 (the smaller class sets it); anomalies 24 / 3 = 8
    assert cs.shape == (32, 3, 16, 16)
    assert cs.data.dtype == np.float32 and cs.data.min() >= 0.0 and cs.data.max() <= 1.0
    assert cs.bands == ("R", "G", "B")
    assert class_counts(cs) == {"n01": 12, "n02": 12, "n03": 8}
    truth = np.asarray(cs.table["is_anomaly"])
    np.testing.assert_array_equal(truth, cs.table["class"] == "n03")
    assert len(set(cs.ids.tolist())) == len(cs)
    assert all(re.fullmatch(r"n0\d(:extra)?:img\d\d", str(i)) for i in cs.ids)
    assert "split" not in cs.table.colnames
    check_encoded(cs, tol=0.5 if not any(str(f).endswith(".JPG") for f in cs.table["file"]) else 3)
    assert cs.meta["benchmark"] == "image_folder" and cs.meta["anomaly_class"] == "n03"
    assert cs.meta["anomaly_fraction"] == 0.25 and cs.meta["image_size"] == 16
    assert cs.meta["layout"] == "class_folders" and cs.meta["classes"] == ["n01", "n02", "n03"]


def test_image_folder_reads_jpg_any_case_and_subfolders(class_folders):
    cs = load_image_folder(class_folders, anomaly_class="n01", anomaly_fraction=0.2, image_size=16)
    files = set(cs.table["file"].tolist())
    assert {"n03/img10.JPG", "n03/img11.JPG"} <= files  # every normal image is used at this fraction
    assert class_counts(cs)["n02"] == 12  # 12 of its 13, like n03
    cs = load_image_folder(class_folders, anomaly_class="n02", anomaly_fraction=0.5, image_size=16, seed=0)
    assert "n02:extra:img12" in cs.ids and "n01:notes" not in cs.ids
    check_encoded(cs, tol=3)


def test_image_folder_fraction_and_seeds(class_folders, caplog):
    with caplog.at_level(logging.WARNING, logger="anomalymatch_astro.datasets"):
        cs = load_image_folder(class_folders, anomaly_class="n01", image_size=16)  # 1%: too few images
    assert int(cs.table["is_anomaly"].sum()) == 1 and len(cs) == 25
    assert "not the 0.01 asked for" in caplog.text
    a = load_image_folder(class_folders, anomaly_class="n01", anomaly_fraction=0.1, image_size=16, seed=0)
    b = load_image_folder(
        class_folders, anomaly_class="n01", anomaly_fraction=0.1, image_size=16, seed=5, n_workers=1, progress=True
    )
    assert int(a.table["is_anomaly"].sum()) == 3 and len(a) == 27
    assert a.ids.tolist() != b.ids.tolist()
    common = np.intersect1d(a.ids, b.ids)
    assert len(common) >= 20
    np.testing.assert_array_equal(a[list(common)].data, b[list(common)].data)


def test_image_folder_native_size_exact(class_folders):
    cs = load_image_folder(
        class_folders, anomaly_class="n02", classes=["n01", "n02"], anomaly_fraction=0.5, image_size=None
    )
    assert cs.shape == (24, 3, 20, 24)  # 12 + 12: H 20, W 24, as the files
    assert set(cs.table["class"]) == {"n01", "n02"}
    for k in range(len(cs)):
        with Image.open(class_folders / str(cs.table["file"][k])) as im:
            expected = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255
        np.testing.assert_array_equal(cs.data[k], expected)


def test_image_folder_native_size_must_agree(tmp_path):
    for c in ("n01", "n02"):
        for i in range(3):
            save(tmp_path / c / f"img{i:02d}.png", fake_image(c, i, seed=i, size=(24 + (c == "n02"), 20)))
    with pytest.raises(InvalidInputError, match="pass image_size"):
        load_image_folder(tmp_path, anomaly_class="n01", anomaly_fraction=0.5, image_size=None)


@pytest.fixture(scope="module")
def csv_copy(tmp_path_factory):
    """miniImageNet csv layout: images/*.jpg with train.csv (n01, n02), val.csv (n03), test.csv (n04)."""
    root = tmp_path_factory.mktemp("mini_csv")
    splits = {"train": ("n01", "n02"), "val": ("n03",), "test": ("n04",)}
    for split, classes in splits.items():
        rows = ["filename,label"]
        for c in classes:
            for i in range(12):
                name = f"{c}img{i:02d}.jpg"
                save(root / "images" / name, fake_image(c, i, seed=i))
                rows.append(f"{name},{c}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def test_image_folder_csv_layout(csv_copy):
    cs = load_image_folder(
        csv_copy, anomaly_class="n03", classes=["n01", "n02", "n03"], anomaly_fraction=0.2, image_size=16, seed=2
    )
    assert len(cs) == 30 and int(cs.table["is_anomaly"].sum()) == 6
    assert set(cs.table["class"]) == {"n01", "n02", "n03"}
    assert all(re.fullmatch(r"images:n0\dimg\d\d", str(i)) for i in cs.ids)
    split_of = {"n01": "train", "n02": "train", "n03": "val"}
    assert all(s == split_of[c] for s, c in zip(cs.table["split"], cs.table["class"]))
    check_encoded(cs, tol=4)  # JPEG
    assert cs.meta["layout"] == "split_csv"
    every = load_image_folder(csv_copy, anomaly_class="n04", anomaly_fraction=0.25, image_size=16)
    assert set(every.table["class"]) == {"n01", "n02", "n03", "n04"}
    assert set(every.table["split"]) == {"train", "val", "test"}


def test_image_folder_split_folders(tmp_path):
    for split, classes in {"train": ("n01", "n02"), "val": ("n03",)}.items():
        for c in classes:
            for i in range(4):
                save(tmp_path / split / c / f"img{i:02d}.png", fake_image(c, i, seed=i))
    cs = load_image_folder(tmp_path, anomaly_class="n02", anomaly_fraction=0.25, image_size=16)
    assert class_counts(cs) == {"n01": 4, "n02": 3, "n03": 4}  # 8 normals; 8 / 3 -> 3 anomalies
    assert all(re.fullmatch(r"(train|val):n0\d:img\d\d", str(i)) for i in cs.ids)
    np.testing.assert_array_equal(cs.table["split"] == "val", cs.table["class"] == "n03")
    check_encoded(cs)
    assert cs.meta["layout"] == "split_folders"


def test_image_folder_csv_errors(tmp_path, csv_copy):
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    for i in range(3):
        save(broken / "images" / f"a{i}.jpg", fake_image("n01", i, seed=i))
    rows = ["filename,label"] + [f"a{i}.jpg,n01" for i in range(3)] + [f"gone{i}.jpg,n02" for i in range(7)]
    (broken / "train.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(InvalidInputError, match=r"7 image file\(s\).*missing") as err:
        load_image_folder(broken, anomaly_class="n01", anomaly_fraction=0.5)
    assert str(err.value).count("gone") == 5
    (broken / "train.csv").write_text("file,class\na0.jpg,n01\n")
    with pytest.raises(InvalidInputError, match="header 'filename,label'"):
        load_image_folder(broken, anomaly_class="n01")
    (broken / "train.csv").write_text("filename,label\na0.jpg,n01\na0.jpg,n02\n")
    with pytest.raises(InvalidInputError, match="labelled both"):
        load_image_folder(broken, anomaly_class="n01")


def test_image_folder_corrupt_image(tmp_path):
    for c in ("n01", "n02"):
        for i in range(4):
            save(tmp_path / c / f"img{i:02d}.png", fake_image(c, i, seed=i))
    (tmp_path / "n02" / "img99.jpg").write_bytes(b"\xff\xd8 truncated, not a JPEG")
    with pytest.raises(InvalidInputError, match=r"cannot decode the image .*n02/img99\.jpg"):
        load_image_folder(tmp_path, anomaly_class="n01", anomaly_fraction=0.2, image_size=16)


def test_image_folder_empty_and_pickles(tmp_path):
    with pytest.raises(InvalidInputError, match="(?s)does not exist.*Layouts accepted"):
        load_image_folder(tmp_path / "nowhere", anomaly_class="a")
    empty = tmp_path / "empty"
    (empty / "n01").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="(?s)found no images.*Layouts accepted"):
        load_image_folder(empty, anomaly_class="n01")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mini-imagenet-cache-train.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(InvalidInputError, match="mini-imagenet-cache-train.pkl.*pickle"):
        load_image_folder(cache, anomaly_class="n01")
    with pytest.raises(InvalidInputError, match="never opens pickles"):
        load_image_folder(cache / "mini-imagenet-cache-train.pkl", anomaly_class="n01")


def test_image_folder_class_errors(class_folders):
    with pytest.raises(InvalidInputError, match=r"anomaly_class 'n09' is not one of .*\['n01', 'n02', 'n03'\]"):
        load_image_folder(class_folders, anomaly_class="n09")
    with pytest.raises(InvalidInputError, match=r"no images of the class\(es\) \['n07'\]"):
        load_image_folder(class_folders, anomaly_class="n01", classes=["n01", "n07"])
    with pytest.raises(InvalidInputError, match="'n03' is not one of classes"):
        load_image_folder(class_folders, anomaly_class="n03", classes=["n01", "n02"])
    with pytest.raises(InvalidInputError, match="at least one class besides 'n01'"):
        load_image_folder(class_folders, anomaly_class="n01", classes=["n01"])
    with pytest.raises(InvalidInputError, match="class name"):
        load_image_folder(class_folders, anomaly_class=1)
    with pytest.raises(InvalidInputError, match="n_workers"):
        load_image_folder(class_folders, anomaly_class="n01", n_workers=0)


# ----------------------------------------------------------------------------- discovery and dispatch
def test_find_local_sets(tmp_path, galaxy, csv_copy, caplog):
    _, sources = galaxy
    write_galaxy_file(tmp_path / "GalaxyMNIST" / "raw" / "train_dataset.hdf5", *sources["test"])
    mini = tmp_path / "data" / "Mini-ImageNet"
    for c in ("n01", "n02"):
        save(mini / c / "img00.png", fake_image(c, 0, seed=0))
    (tmp_path / "notes").mkdir()
    for name in ("figures", "plots"):  # the folder itself now looks like an ImageFolder; the named copy wins
        save(tmp_path / name / "fig.png", fake_image("n01", 0, seed=0))
    found = find_local_sets(tmp_path)
    assert found == {"galaxy_mnist": tmp_path / "GalaxyMNIST" / "raw", "miniimagenet": mini}
    cs = load_galaxy_mnist(found["galaxy_mnist"])
    assert len(cs) == 40
    # a copy is found when pointed at directly, too
    assert find_local_sets(csv_copy) == {"miniimagenet": csv_copy}
    assert find_local_sets(mini) == {"miniimagenet": mini}
    assert find_local_sets(mini.parent) == {"miniimagenet": mini}
    nested = tmp_path / "nested" / "mini_imagenet" / "data"
    for c in ("n01", "n02"):
        save(nested / c / "img00.png", fake_image(c, 0, seed=0))
    assert find_local_sets(tmp_path / "nested") == {"miniimagenet": nested}
    assert find_local_sets(tmp_path / "figures") == {}
    f = tmp_path / "GalaxyMNIST" / "raw" / "train_dataset.hdf5"
    assert find_local_sets(f) == {"galaxy_mnist": f}
    with pytest.raises(InvalidInputError, match="(?s)does not exist.*Layouts accepted"):
        find_local_sets(tmp_path / "missing")
    with caplog.at_level(logging.WARNING, logger="anomalymatch_astro.datasets"):
        assert find_local_sets(tmp_path / "notes") == {}
    assert "found no local copy" in caplog.text
    pickled = tmp_path / "pickled" / "miniImageNet"
    pickled.mkdir(parents=True)
    (pickled / "mini-imagenet-cache-train.pkl").write_bytes(b"\x80\x04.")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="anomalymatch_astro.datasets"):
        assert find_local_sets(tmp_path / "pickled") == {}
    assert "pickle" in caplog.text


def test_load_benchmark_set_local(galaxy, class_folders):
    root, sources = galaxy
    cs = load_benchmark_set("galaxy_mnist", path=root, anomaly_class="smooth_round", n_per_class=5, seed=4)
    direct = load_galaxy_mnist(root, anomaly_class="smooth_round", n_per_class=5, seed=4)
    np.testing.assert_array_equal(cs.ids, direct.ids)
    assert cs.meta["benchmark"] == "galaxy_mnist" and cs.meta["seed"] == 4
    assert_matches_source(cs, sources)
    cs = load_benchmark_set(
        "image_folder", path=class_folders, anomaly_class="n02", anomaly_fraction=0.25, image_size=16, seed=1
    )
    assert cs.meta["benchmark"] == "image_folder" and int(cs.table["is_anomaly"].sum()) == 8
    for name in ("galaxy_mnist", "image_folder"):
        with pytest.raises(InvalidInputError, match="pass path="):
            load_benchmark_set(name)
    with pytest.raises(InvalidInputError, match="choose one of.*galaxy_mnist"):
        load_benchmark_set("miniimagenet")
