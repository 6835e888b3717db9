import gc
import pickle
import warnings
import zipfile

import numpy as np
import pytest

from solvable.sims import diagonal
from solvable.sims.engine.trajectory import Trajectory


def small():
    problem = diagonal.Problem.random(8, 12, 2, seed=0)
    return diagonal.simulate(problem, alpha=[0.1, 1.0], t_max=20.0, record_w=True)


def test_roundtrip_is_exact(tmp_path):
    traj = small()
    path = traj.save(tmp_path / "run")
    assert path.suffix == ".npz"
    back = Trajectory.load(path)
    np.testing.assert_array_equal(back.times, traj.times)
    assert back.observables.keys() == traj.observables.keys()
    for k in traj.observables:
        np.testing.assert_array_equal(back.observables[k], traj.observables[k])
    for k in traj.final:
        np.testing.assert_array_equal(back.final[k], traj.final[k])
    np.testing.assert_array_equal(back.status, traj.status)
    np.testing.assert_array_equal(back.stop_step, traj.stop_step)
    assert back.meta == traj.meta
    assert back.meta["model"] == "diagonal" and "numpy" in back.meta["versions"]


def test_run_selects_one(tmp_path):
    traj = small()
    one = traj.run(1)
    assert one.batch_size == 1
    np.testing.assert_array_equal(one.final["w"][0], traj.final["w"][1])


def test_pickled_payload_is_refused_not_executed(tmp_path):
    """A crafted .npz holding an object array would run code if unpickled; load refuses it."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("format.npy", _npy(np.asarray("solvable.trajectory/1")))
        zf.writestr("meta.npy", _npy(np.asarray("{}")))
        obj = np.empty(1, dtype=object)
        obj[0] = Exploit()
        header = b"\x93NUMPY\x01\x00"
        desc = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        desc = desc + " " * (118 - len(desc)) + "\n"
        zf.writestr("times.npy", header + len(desc).to_bytes(2, "little") + desc.encode() + pickle.dumps(obj))
    with pytest.raises(ValueError):
        Trajectory.load(path)
    assert not marker.exists()


def _npy(arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("content", [b"not a zip", b"PK\x03\x04garbage", pickle.dumps({"a": 1}), _npy(np.arange(3))])
def test_garbage_files_raise_value_error(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValueError):
            Trajectory.load(path)
        gc.collect()  # a file left open warns when it is collected
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, times=np.arange(3.0))
    with pytest.raises(ValueError, match="not a solvable.trajectory"):
        Trajectory.load(path)


def test_inconsistent_shapes_are_refused():
    with pytest.raises(ValueError, match="observable 'loss'"):
        Trajectory(times=np.arange(3.0), observables={"loss": np.zeros((2, 4))}, final={},
                   status=np.array(["converged"] * 2), stop_step=np.zeros(2), stop_time=np.zeros(2))
    with pytest.raises(ValueError, match="status values"):
        Trajectory(times=np.arange(3.0), observables={}, final={}, status=np.array(["done"]),
                   stop_step=np.zeros(1), stop_time=np.zeros(1))
