"""The restricted unpickler and safe archive extraction refuse whatever could run code or escape."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from robustattr.data.archives import safe_extract
from robustattr.data.safe_pickle import loads_arrays
from robustattr.errors import UserInputError
from raw_formats import Evil, malicious_tar, malicious_zip


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numeric_arrays_round_trip(protocol):
    obj = {
        "features": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        "labels": np.array([3, 4], dtype=">i4"),
        "f": np.asfortranarray(np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)),
        "n": (np.int64(7), np.float32(0.5), [1, "a", None], b"x"),
    }
    out = loads_arrays(pickle.dumps(obj, protocol=protocol), source="t.p")
    for key in ("features", "labels", "f"):
        assert np.array_equal(out[key], obj[key]) and out[key].dtype == obj[key].dtype
    assert out["features"].flags.writeable
    assert out["n"] == (7, 0.5, [1, "a", None], b"x")


def test_python2_pickle_of_the_classic_mnist_layout():
    # protocol-2 bytes as Python 2 + NumPy 1.x wrote them: _reconstruct, SHORT_BINSTRING data
    x = np.array([[0.0, 0.5]], np.float32)
    blob = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87R"
            b"q\x03(K\x01K\x01K\x02\x86cnumpy\ndtype\nq\x04U\x02f4K\x00K\x01\x87Rq\x05(K\x03U\x01<NNNJ\xff\xff\xff\xff"
            b"J\xff\xff\xff\xffK\x00tb\x89U\x08" + x.tobytes() + b"tb.")
    assert np.array_equal(loads_arrays(blob, source="mnist.pkl"), x)


def test_code_execution_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UserInputError, match=r"evil\.p: refused to unpickle: global (posix|os|nt)\.system"):
        loads_arrays(pickle.dumps({"features": Evil(marker)}), source="evil.p")
    assert not marker.exists()


@pytest.mark.parametrize("payload, reason", [
    (np.array([object(), 1], dtype=object), "dtype '\\|?O"),
    (np.zeros(2, dtype=[("a", "u1"), ("b", "f4")]), "dtype '\\|?V"),
    (np.ma.masked_array([1, 2]), "global numpy.ma"),
    (__import__("collections").OrderedDict(a=1), "global collections.OrderedDict"),
])
def test_other_objects_are_refused(payload, reason):
    with pytest.raises(UserInputError, match="refused to unpickle: " + reason):
        loads_arrays(pickle.dumps(payload, protocol=2), source="x.p")


def test_codecs_only_latin1():
    blob = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R."
    with pytest.raises(UserInputError, match="_codecs.encode with encoding 'base64'"):
        loads_arrays(blob, source="x.p")


def test_garbage_is_a_clear_error():
    with pytest.raises(UserInputError, match="x.p: not a readable pickle of arrays"):
        loads_arrays(b"\x80\x04not a pickle", source="x.p")


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink"])
def test_unsafe_tar_members_refused_before_writing(tmp_path, kind):
    archive = malicious_tar(tmp_path / "a.tar", kind)
    dest = tmp_path / "out" / "inner"
    with pytest.raises(UserInputError, match=r"a\.tar: refused unsafe member .*(absolute path|'\.\.' component|outside the target)"):
        safe_extract(archive, dest)
    assert not (dest / "jpg" / "ok.txt").exists()  # nothing extracted, not even the safe member
    assert not list(tmp_path.rglob("evil*")) and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt", "C:/evil.txt"])
def test_unsafe_zip_members_refused(tmp_path, member):
    archive = malicious_zip(tmp_path / "a.zip", member)
    with pytest.raises(UserInputError, match=r"a\.zip: refused unsafe member"):
        safe_extract(archive, tmp_path / "out")
    assert not list(tmp_path.rglob("evil*"))


def test_safe_archives_extract(tmp_path):
    with zipfile.ZipFile(tmp_path / "ok.zip", "w") as zf:
        zf.writestr("d/a.txt", "A")
    assert (safe_extract(tmp_path / "ok.zip", tmp_path / "z") / "d" / "a.txt").read_text() == "A"
    (tmp_path / "junk.bin").write_bytes(b"not an archive")
    with pytest.raises(UserInputError, match="junk.bin: not a tar or zip archive"):
        safe_extract(tmp_path / "junk.bin", tmp_path / "j")
