r"""Matrix sensing on the population operator from the aligned start, in exact reduced coordinates: the modes.

Identity (the commuting case of Gidel, Bach & Lacoste-Julien 2019 and of the incremental-learning
analyses, e.g. Jin et al. 2023, Sec. 3; derived here for each factorisation): with the population
loss :math:`f = c\,\|M - M^*\|_F^2` (``loss_scale`` :math:`c`), :math:`M^* = U\operatorname{diag}(\sigma^*)V^\top`
(full SVD, :math:`\sigma^*_i = 0` beyond the rank) and ``init="aligned"``, the factors stay diagonal in the
singular bases, because every gradient is:

* symmetric, :math:`X = U_k\operatorname{diag}(x)`: :math:`\nabla_X f = 4c(XX^\top - M^*)X = U_k\operatorname{diag}(4c(x^2 - \sigma^*)x)`,
  so :math:`\dot x = -4c\,(x^2 - \sigma^*)\,x`;
* asymmetric, :math:`F = U_k\operatorname{diag}(p)`, :math:`G = V_k\operatorname{diag}(q)`:
  :math:`\dot p = -2c\,(pq - \sigma^*)\,q`, :math:`\dot q = -2c\,(pq - \sigma^*)\,p` (so :math:`p^2 - q^2` is conserved);
* deep, :math:`W_1 = aV_k^\top`, :math:`W_j = aI`, :math:`W_N = U_k a` (balanced): with :math:`\sigma = a^N`,
  :math:`\dot\sigma = -2cN\,\sigma^{2 - 2/N}(\sigma - \sigma^*)`.

Each mode moves alone: :math:`x_i^2` is the logistic
:math:`\sigma^*_i/(1 + (\sigma^*_i/x_i(0)^2 - 1)e^{-8c\sigma^*_i t})` and a mode with :math:`\sigma^*_i = 0`
decays as :math:`x_i(0)^2/(1 + 8c\,x_i(0)^2 t)` (the sublinear tail of over-parameterisation).

Exact for gradient flow with the l2 loss on the population operator (no noise, no outliers) from the
aligned start; a Gaussian or completion operator, the l1 loss, a random start or a discrete algorithm
run in full coordinates. Cost per step and run: O(k) instead of O(k(n1 + n2)) and an n1 x n2 residual.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.backend import device_of as _device, asarray, namespace
from ..engine.driver import Model

from .problem import Problem

__all__ = ["reduced_model", "reduced_refusal"]


def reduced_refusal(problem: Problem, init: str, loss: str) -> str:
    """Why the reduction does not apply (empty when it does)."""
    if problem.operator != "population":
        return f"operator={problem.operator!r} (the modes decouple on the population operator only)"
    if init != "aligned":
        return f"init={init!r} (the reduction needs init='aligned')"
    if loss != "l2":
        return f"loss={loss!r} (the reduction is for the l2 loss)"
    return ""


def reduced_model(problem: Problem, alpha: np.ndarray, beta: np.ndarray | None, *, k: int, factorisation: str,
                  depth: int, loss_scale: float, record_sv: bool, record_M: bool, backend: str, dtype: str,
                  device: Any, meta: dict[str, Any], loss_tol: Any) -> Model:
    """The mode ODEs as the driver's :class:`~sims.engine.driver.Model` (``alpha``, ``beta``: the (B,) scales)."""
    xp = namespace(backend)
    U, s_all, Vt = np.linalg.svd(problem.M_star)
    Uk, Vk = U[:, :k], (U[:, :k] if factorisation == "symmetric" else Vt[:k].T)  # X X^T: U on both sides
    target_host = np.zeros(k)
    target_host[: min(k, s_all.shape[0])] = s_all[:k]
    rest_sq = float(np.sum(s_all[k:] ** 2))  # modes of M* beyond k are never fit
    norm_sq = float(np.sum(s_all**2))
    n_sv = min(problem.n1, problem.n2)
    st = asarray(target_host, xp, dtype, device)
    c = float(loss_scale)
    b = alpha if beta is None else beta
    if factorisation == "symmetric":
        state0 = (alpha[:, None] * np.ones(k),)
    elif factorisation == "asymmetric":
        state0 = (alpha[:, None] * np.ones(k), b[:, None] * np.ones(k))
    else:
        state0 = (alpha[:, None] * np.ones(k),)  # sigma = a^N = alpha

    def modes(state: tuple[Any, ...]) -> Any:
        if factorisation == "symmetric":
            return state[0] * state[0]
        if factorisation == "asymmetric":
            return state[0] * state[1]
        return state[0]

    def loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
        sig = modes(state)
        res = sig - st
        loss = c * (xp.sum(res * res, axis=1) + rest_sq)
        if factorisation == "symmetric":
            return loss, (4 * c * res * state[0],)
        if factorisation == "asymmetric":
            p, q = state
            return loss, (2 * c * res * q, 2 * c * res * p)
        return loss, (2 * c * depth * sig ** (2.0 - 2.0 / depth) * res,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        sig = modes(state)
        res = sig - st
        sq = xp.sum(res * res, axis=1) + rest_sq
        out = {"loss": c * sq, "rel_error": xp.sqrt(sq / norm_sq)}
        if record_sv:
            batch = sig.shape[0]
            vals = -xp.sort(-xp.abs(sig), axis=1)
            pad = xp.zeros((batch, n_sv - k), dtype=sig.dtype, device=_device(sig)) if n_sv > k else None
            out["sv"] = vals if pad is None else xp.concat([vals, pad], axis=1)
        if record_M:
            out["M"] = xp.matmul(asarray(Uk, xp, dtype, device)[None, ...] * sig[:, None, :],
                                 asarray(Vk.T, xp, dtype, device))
        if factorisation == "asymmetric":
            p, q = state
            out["imbalance"] = xp.sqrt(xp.sum((p * p - q * q) ** 2, axis=1))
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        sig = host[0] ** 2 if factorisation == "symmetric" else (host[0] * host[1] if factorisation == "asymmetric"
                                                                  else host[0])
        out: dict[str, np.ndarray] = {"M": np.einsum("ik,bk,jk->bij", Uk, sig, Vk), "modes": sig}
        if factorisation == "symmetric":
            out["X"] = Uk[None] * host[0][:, None, :]
        elif factorisation == "asymmetric":
            out["F"], out["G"] = Uk[None] * host[0][:, None, :], Vk[None] * host[1][:, None, :]
        else:
            a = np.maximum(sig, 0.0) ** (1.0 / depth)
            eye = np.eye(k)
            layers = [a[:, :, None] * Vk.T[None]] + [a[:, None, :] * eye[None]] * (depth - 2) + [Uk[None] * a[:, None, :]]
            out.update({f"layer_{j + 1}": w for j, w in enumerate(layers)})
        return out

    return Model(
        name="matrix_sensing", state0=tuple(asarray(x, xp, dtype, device) for x in state0), loss_grad=loss_grad,
        observe=observe, final=final, meta=meta, backend=backend, dtype=dtype, n_samples=None, t_max=1e4,
        atol=0.0, loss_tol=loss_tol, coordinates="reduced",
    )
