"""Every reproduced paper figure draws in quick mode with labelled axes, and says "quick mode" on itself."""

from __future__ import annotations

import importlib

import numpy as np

import pytest

from solvable import figures

from rotation import share


#: The paper figures of 10-23 s each in quick mode (measured with pytest --durations, 2 cores): drawn in CI's slow step,
#: so that the default suite keeps its 10 minutes; the others (a few seconds each) stay in the default run.
SLOW_FIGURES = {"diagonal_alpha", "matrix_sensing_nuclear", "diagonal_stepsize", "diagonal_phase", "deep_linear_grokking",
                "matrix_sensing_overparam", "matrix_sensing_scaledgd"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FIGURES else n
                                  for n in figures.names()])
def test_figure_axes_are_labelled(name, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = importlib.import_module(f"solvable.figures.{name}")
    data = module.compute(quick=True)
    fig = plt.figure(figsize=module.SIZE)
    try:
        module.draw(fig, data)
        titled = bool(fig._suptitle and fig._suptitle.get_text())
        for i, ax in enumerate(fig.axes):
            where = f"{name}, axes {i}"
            if getattr(ax, "_colorbar", None) is not None:  # a colour bar: its label says what the colours are
                assert (ax.get_ylabel() or ax.get_xlabel()).strip(), f"{where}: an unlabelled colour bar"
                continue
            assert ax.get_xlabel().strip(), f"{where}: no x label"
            assert ax.get_ylabel().strip(), f"{where}: no y label"
            assert titled or ax.get_title().strip(), f"{where}: no title and no figure title"
    finally:
        plt.close(fig)


def test_quick_figures_say_so(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    fig = plt.figure()
    figures.stamp(fig, True)
    assert any("quick mode" in t.get_text() for t in fig.texts)
    plt.close(fig)
    calls = []
    monkeypatch.setattr(figures, "stamp", lambda fig, quick: calls.append(quick))
    (path,) = figures.make("deep_linear_saxe", tmp_path, quick=True)
    assert path.is_file() and calls == [True]


def _numbers(data, path=""):
    """Every numeric leaf of a figure's data, by its path in the dict."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _numbers(v, f"{path}/{k}")
    elif isinstance(data, (list, tuple)) and data and not isinstance(data[0], str):
        for i, v in enumerate(data):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(data, (int, float, np.ndarray, np.generic)) and not isinstance(data, bool):
        a = np.asarray(data)
        if a.dtype.kind in "iuf":
            yield path, a


def test_backend_and_device_apply_to_the_driver_figures_only(tmp_path):
    takes = figures.on_backends()
    assert "diagonal_alpha" in takes and "lsa_svm_rank" in takes
    # the host-only ones: their simulations are NumPy functions outside the driver
    assert set(figures.names()) - set(takes) == {"diagonal_saddle", "deep_linear_grokking", "deep_linear_collapse"}
    with pytest.raises(ValueError, match="'diagonal_saddle' computes on the host.*apply to \\['diagonal_alpha'"):
        figures.make("diagonal_saddle", tmp_path, quick=True, backend="array_api_strict")
    with pytest.raises(ValueError, match="device must name a device of backend 'array_api_strict'"):
        figures.make("diagonal_alpha", tmp_path, quick=True, backend="array_api_strict", device="device9")
    assert not list(tmp_path.iterdir())  # refused before anything ran or was written
    (path,) = figures.make("deep_linear_saxe", tmp_path, quick=True, backend="array_api_strict", device="device1")
    assert path.is_file()


@pytest.mark.slow  # a sixteenth of the figures each slow run, rotating with the commit (tests/rotation.py): one took
@pytest.mark.parametrize("name", share(figures.on_backends(), 16))  # 180 s (diagonal_stepsize, measured on 2 cores)
def test_figure_on_a_second_device_equals_numpy(name, monkeypatch):
    """Every driver figure on array_api_strict's second device gives NumPy's numbers, and every simulation
    it runs ran there (each trajectory's meta says where; an array made on the default device would fail)."""
    module = importlib.import_module(f"solvable.figures.{name}")
    ran = []
    families = {value for n in figures.on_backends() for value in vars(importlib.import_module(
        f"solvable.figures.{n}")).values() if getattr(value, "__name__", "").startswith("solvable.sims.")}
    for family in families:
        if hasattr(family, "simulate"):
            def simulate(*args, _real=family.simulate, **kwargs):
                traj = _real(*args, **kwargs)
                ran.append((traj.meta["backend"], traj.meta["device"]))
                return traj

            monkeypatch.setattr(family, "simulate", simulate)
    strict = dict(_numbers(module.compute(quick=True, backend="array_api_strict", device="device1")))
    assert ran and all(b == "array_api_strict" and "device1" in d for b, d in ran), ran
    host = dict(_numbers(module.compute(quick=True)))
    assert strict.keys() == host.keys() and host
    for key, a in host.items():
        # the same arithmetic (array_api_strict wraps NumPy): explicit methods and discrete rules take the
        # same steps however often they read their status, so only round-off is allowed. A Rosenbrock-W
        # flow may take another valid step sequence on a device (tests/test_contract.py::_assert_agree);
        # the figures that run one (the diagonal ones, in reduced coordinates by default) measured within
        # this bound here (all 17 figures, 2026-11-27)
        np.testing.assert_allclose(strict[key], a, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{name}: {key}")


def test_sweep_figure_resumes_from_its_store_and_draws_a_store_made_elsewhere(tmp_path, monkeypatch):
    """diagonal_phase is computed as a sweep: its points land in <out>/stores/<name>-quick, a second make computes
    nothing (the task is made to fail: the drawing comes from the store), `--store` draws a given store, and a
    store does not apply to a figure that is not a sweep."""
    from solvable.figures import diagonal_phase
    from solvable.proofs_checks.framework.cli import main
    from solvable.sims import diagonal

    (path,) = figures.make("diagonal_phase", tmp_path / "out", quick=True)
    store = tmp_path / "out" / "stores" / "diagonal_phase-quick"
    assert path.is_file() and len(list(store.glob("*.json"))) == len(diagonal_phase.points(quick=True))
    first = diagonal_phase.compute(quick=True, store=store)

    def broken(**kw):
        raise AssertionError("recomputed a stored point")

    monkeypatch.setattr(diagonal, "sweep_gd_phase", broken)
    again = diagonal_phase.compute(quick=True, store=store)
    np.testing.assert_array_equal(again["distance"], first["distance"])
    assert first["runs"] == 96 and np.nanmin(first["distance"]) < np.nanmax(first["distance"])
    assert first["diverged"][-1, -1] == 1.0  # the largest step from the largest scale diverges
    assert main(["figure", "diagonal_phase", "--quick", "--out", str(tmp_path / "other"), "--store", str(store)]) == 0
    assert (tmp_path / "other" / "diagonal_phase.png").is_file() and not (tmp_path / "other" / "stores").exists()
    with pytest.raises(ValueError, match="not computed as a sweep"):
        figures.make("deep_linear_saxe", tmp_path, quick=True, store=store)
