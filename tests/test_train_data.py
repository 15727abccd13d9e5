"""Datasets: built-in sets, the user's CSV/.npy files and their errors, the split."""

from __future__ import annotations

import numpy as np
import pytest

from losskit.train import data
from losskit.train.data import DataError, Dataset, Standardizer, infer_task, load, split


@pytest.mark.parametrize(
    ("name", "task", "shape", "classes"),
    [
        ("digits", "multiclass", (1797, 64), 10),
        ("iris", "multiclass", (150, 4), 3),
        ("wine", "multiclass", (178, 13), 3),
        ("breast_cancer", "binary", (569, 30), 2),
        ("diabetes", "regression", (442, 10), 0),
    ],
)
def test_builtin_datasets(name, task, shape, classes):
    ds = data.load_builtin(name)
    assert ds.task == task
    assert ds.X.shape == shape
    assert ds.n_classes == classes
    assert ds.y.shape == (shape[0],)


def test_unknown_builtin():
    with pytest.raises(DataError, match="unknown dataset 'mnist'; choose one of digits, iris"):
        data.load_builtin("mnist")


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_with_text_labels(tmp_path):
    p = _write(tmp_path / "pets.csv", "weight,height,kind\n4,30,cat\n30,60,dog\n5,28,cat\n")
    ds = data.load_csv(p, "kind")
    assert ds.task == "binary"
    assert ds.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(ds.y, [0, 1, 0])
    assert ds.feature_names == ["weight", "height"]
    np.testing.assert_array_equal(ds.X, [[4, 30], [30, 60], [5, 28]])


def test_csv_regression_and_forced_task(tmp_path):
    p = _write(tmp_path / "r.csv", "x,y\n1,0.5\n2,1.5\n3,2.25\n")
    assert data.load_csv(p, "y").task == "regression"
    q = _write(tmp_path / "c.csv", "x,y\n1,1\n2,2\n3,3\n")
    assert data.load_csv(q, "y").task == "multiclass"
    assert data.load_csv(q, "y", task="regression").task == "regression"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad.csv is empty"),
        ("a,b,y\n", "bad.csv has a header but no data rows"),
        ("a,b,y\n1,2,0\n3,4\n", "malformed CSV .*bad.csv: row 3 has 2 fields, the header has 3"),
        (
            "a,b,y\n1,2,0\n3,x,1\n",
            r"malformed CSV .*bad.csv: row 3, column 'b': 'x' is not a number",
        ),
        ("a,b,y\n1,,0\n3,4,1\n", r"malformed CSV .*bad.csv: row 2, column 'b': missing value"),
        ("a,b,y\n1,2,\n3,4,1\n", r"malformed CSV .*bad.csv: row 2, column 'y': missing value"),
        ("a,b,q\n1,2,0\n3,4,1\n", r"column 'y' is not in .*bad.csv; its columns are: a, b, q"),
        ("y\n1\n0\n", r"bad.csv has no feature columns besides 'y'"),
        ("a,b,y\n1,inf,0\n3,4,1\n", r"malformed CSV .*: row 2, column 'b': 'inf' is not finite"),
        ("a,b,y\n1,2,0\n3,4,nan\n", r"malformed CSV .*: row 3, column 'y': 'nan' is not finite"),
        (
            "a,b,y\n1,2,0.5\n3,4,-inf\n",
            r"malformed CSV .*: row 3, column 'y': '-inf' is not finite",
        ),
        ("a,b,y\n1,2,cat\n3,4,NaN\n", r"malformed CSV .*: row 3, column 'y': 'NaN' is not finite"),
        ("a,y\n1,0\n3,0\n", "a classification target needs at least 2 classes; got 1"),
    ],
)
def test_csv_errors(tmp_path, text, message):
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message):
        data.load_csv(p, "y")


def test_csv_not_utf8(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,y\n\xff\xfe,1\n")
    with pytest.raises(DataError, match=r"malformed CSV .*bin.csv: not UTF-8 text"):
        data.load_csv(str(p), "y")


def test_files_with_a_utf8_byte_order_mark(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM: it belongs to neither the header nor the data."""
    bom = b"\xef\xbb\xbf"
    (tmp_path / "d.csv").write_bytes(bom + b"label,a,b\n0,1,2\n1,3,4\n0,1,1\n1,5,5\n")
    ds = data.load_csv(tmp_path / "d.csv", "label")
    assert ds.feature_names == ["a", "b"] and ds.y.tolist() == [0, 1, 0, 1]
    (tmp_path / "v.csv").write_bytes(bom + b"2\n1\n")  # no header: both rows are data
    np.testing.assert_array_equal(data.load_array(tmp_path / "v.csv"), [2, 1])
    (tmp_path / "h.csv").write_bytes(bom + b"p,q\n1,2\n")
    np.testing.assert_array_equal(data.load_array(tmp_path / "h.csv"), [[1, 2]])
    (tmp_path / "a.json").write_bytes(bom + b"[1, 2]")
    np.testing.assert_array_equal(data.load_array(tmp_path / "a.json"), [1, 2])


def test_npy_features_with_target_file_or_column(tmp_path):
    X = np.arange(24.0).reshape(8, 3) / 7
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(8) % 2)
    ds = load(data=str(tmp_path / "X.npy"), target=str(tmp_path / "y.npy"))
    assert ds.task == "binary" and ds.X.shape == (8, 3)
    ds = load(data=str(tmp_path / "X.npy"), target="2")
    assert ds.task == "regression" and ds.X.shape == (8, 2)
    np.testing.assert_array_equal(ds.y, X[:, 2])


def test_npy_errors(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((8, 3)))
    np.save(tmp_path / "v.npy", np.zeros(8))
    np.save(tmp_path / "short.npy", np.zeros(5))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    X = str(tmp_path / "X.npy")
    with pytest.raises(
        DataError,
        match=r"target .*short.npy must hold one value per row of .*X.npy \(8\); got shape \(5,\)",
    ):
        load(data=X, target=str(tmp_path / "short.npy"))
    with pytest.raises(DataError, match=r"column 7 is not in .*X.npy; it has 3 columns"):
        load(data=X, target="7")
    with pytest.raises(
        DataError, match=r"v.npy must hold a 2-D array \(samples x features\); got shape \(8,\)"
    ):
        load(data=str(tmp_path / "v.npy"), target="0")
    with pytest.raises(DataError, match=r"cannot read .*junk.npy as .npy"):
        load(data=str(tmp_path / "junk.npy"), target="0")
    with pytest.raises(DataError, match=r"no such file: .*nope.npy"):
        load(data=X, target=str(tmp_path / "nope.npy"))


def test_npy_non_finite_features_or_target(tmp_path):
    X = np.arange(24.0).reshape(8, 3)
    np.save(tmp_path / "X.npy", X)
    y = np.arange(8.0) % 2
    y[5] = np.nan
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(
        DataError, match=r"malformed .*y.npy: the target must be finite; got nan at row 5 \(from"
    ):
        load(data=str(tmp_path / "X.npy"), target=str(tmp_path / "y.npy"))
    X[3, 2] = np.inf
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(8) % 2)
    for target in ("2", str(tmp_path / "y.npy")):  # the bad value as target, then as feature
        with pytest.raises(
            DataError, match=r"malformed .*X.npy: .* must be finite; got inf at row 3, column 2"
        ):
            load(data=str(tmp_path / "X.npy"), target=target)


def test_load_errors(tmp_path):
    with pytest.raises(DataError, match=r"no such file: .*missing.csv"):
        load(data=str(tmp_path / "missing.csv"), target="y")
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(
        DataError, match=r"cannot read .*d.txt: use a .csv file with a header row, or a .npy array"
    ):
        load(data=str(tmp_path / "d.txt"), target="y")
    with pytest.raises(DataError, match="name the target column"):
        load(data=str(tmp_path / "d.txt"))


def test_load_array_formats(tmp_path):
    (tmp_path / "a.json").write_text("[[1, 2], [3, 4]]")
    (tmp_path / "a.csv").write_text("p,q\n1,2\n3,4\n")
    (tmp_path / "b.csv").write_text("1\n2\n")
    (tmp_path / "bad.json").write_text("[1, 2")
    np.testing.assert_array_equal(data.load_array(tmp_path / "a.json"), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.load_array(tmp_path / "a.csv"), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(data.load_array(tmp_path / "b.csv"), [1, 2])
    with pytest.raises(DataError, match="malformed JSON"):
        data.load_array(tmp_path / "bad.json")


def test_infer_task():
    assert infer_task(np.array([3, 1, 3, 2]))[1:] == ("multiclass", ["1", "2", "3"])
    assert infer_task(np.arange(50))[1] == "regression"  # too many distinct values
    with pytest.raises(DataError, match="a regression target must be numeric"):
        infer_task(np.array(["a", "b"]), "regression")
    with pytest.raises(DataError, match="unknown task 'ranking'"):
        infer_task(np.array([1, 2]), "ranking")


def test_split_is_seeded_stratified_and_disjoint():
    ds = data.load_builtin("iris")
    a = split(ds, seed=0)
    b = split(ds, seed=0)
    c = split(ds, seed=1)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, c.X_test)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 150
    for y in (a.y_train, a.y_val, a.y_test):
        assert set(np.unique(y)) == {0, 1, 2}
    np.testing.assert_array_equal(np.bincount(a.y_test), [10, 10, 10])
    rows = {tuple(r) for r in a.X_train} | {tuple(r) for r in a.X_val}
    assert not any(
        tuple(r) in rows for r in a.X_test if list(map(tuple, ds.X)).count(tuple(r)) == 1
    )


def test_split_errors():
    ds = Dataset(X=np.zeros((3, 1)), y=np.array([0.0, 1.0, 2.0]), task="regression")
    with pytest.raises(DataError, match="too few rows"):
        split(ds, val=0.1, test=0.1)
    with pytest.raises(DataError, match="fractions must be in"):
        split(ds, val=0.6, test=0.6)


def test_standardizer_learns_from_training_rows_only():
    ds = data.load_builtin("wine")
    parts = split(ds, seed=0)
    s = Standardizer().fit(parts.X_train)
    z = s.transform(parts.X_train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    assert not np.allclose(s.transform(parts.X_test).mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(s.inverse_transform(z), parts.X_train)
