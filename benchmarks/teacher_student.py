"""GD steps per second of the grokking teacher-student model (Levi, Beck & Bar-Sinai 2024), against a plain NumPy
loop on the data and the engine's own floor.

d_in = 1000, lambda = 0.3 (N_tr = 3333), d_out = 1, the size of ``deep_linear.grokking_time``. The simulator
(:func:`solvable.sims.deep_linear.simulate_teacher_student`) steps in the eigenbasis of the sample covariance,
where GD's update is elementwise (the same iterates: GD commutes with an orthogonal change of variables). The
peers, measured in this process on this machine:

* a plain NumPy loop of the update on the covariance, ``W <- W - eta (2 (W - W*) Sigma_hat + gamma W)``, and the
  losses each step, as the simulator records them (the simulator's previous form: two d_in^2 products a step);
* the engine's floor: the same driver on a model whose loss and gradient cost nothing, so the ratio says what
  the engine's own per-step work (status, guards, recording) costs.

Every figure is a time per step (best of three), the set-up (data, eigendecomposition) excluded. Run:
``python benchmarks/teacher_student.py`` (``--quick``: d_in = 300).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from solvable.sims import deep_linear as dl
from solvable.sims.engine.driver import Model, train


def best(fn, repeat: int = 3) -> float:
    out = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    d_in, lam, eta, steps = (300, 0.3, 0.01, 500) if args.quick else (1000, 0.3, 0.01, 2000)
    X, w_star, _ = dl.teacher_student_data(d_in, lam)
    cov = X @ X.T / X.shape[1]
    dl.teacher_student_spectrum(d_in, lam)  # the one-off set-up, cached: not part of a step

    def ours(n: int) -> None:
        dl.simulate_teacher_student(d_in, lam, eta, n, record_at=np.arange(n + 1))

    def plain() -> np.ndarray:
        W = np.zeros_like(w_star)
        for _ in range(steps):
            e = W - w_star
            ec = e @ cov
            np.sum(ec * e), np.sum(e * e)  # the two losses, recorded each step
            W = W - eta * 2 * ec
        return W

    floor_model = Model(name="floor", state0=(np.zeros((1, d_in)),),
                        loss_grad=lambda s, weights=None: (np.zeros(1), (np.zeros_like(s[0]),)),
                        observe=lambda s: {"loss": np.zeros(1)}, final=lambda h: {}, meta={}, backend="numpy",
                        dtype="float64")
    # a run of steps + 1 minus a run of one: the per-run set-up cancels
    t_ours = (best(lambda: ours(steps + 1)) - best(lambda: ours(1))) / steps
    t_plain = best(plain) / steps
    t_floor = best(lambda: train(floor_model, "gd", lr=0.1, steps=steps, t_eval=np.arange(steps + 1))) / steps
    print(f"teacher-student GD, d_in = {d_in}, N_tr = {X.shape[1]}, {steps} steps, time per step (best of 3):")
    print(f"  solvable (eigenbasis)          {t_ours * 1e6:9.1f} us")
    print(f"  plain NumPy loop on Sigma_hat  {t_plain * 1e6:9.1f} us   ratio {t_plain / t_ours:.2f}x")
    print(f"  engine floor (free model)      {t_floor * 1e6:9.1f} us   ({t_floor / t_ours:.0%} of solvable's step)")
    W = dl.simulate_teacher_student(d_in, lam, eta, steps).final["W"][0]
    print(f"  the same iterates: max |W_solvable - W_plain| / max |W| = "
          f"{np.max(np.abs(W - plain())) / np.max(np.abs(W)):.1e}")


if __name__ == "__main__":
    main()
