r"""Deep linear networks from the aligned, balanced start, in their exact reduced coordinates: one number per mode.

Identity (Saxe, McClelland & Ganguli 2014, Eqs. 6-7 for depth 2; Arora, Cohen &
Hazan 2018, Thm 1 and its Sec. 5 discussion for depth N): on the target loss
:math:`L = \tfrac12\|W_N\cdots W_1 - \Phi\|_F^2` with
:math:`\Phi = U\operatorname{diag}(s)V^\top`, the layers
:math:`W_1 = E_1\operatorname{diag}(a)V^\top`, :math:`W_j = E_j\operatorname{diag}(a)E_{j-1}^\top`,
:math:`W_N = U\operatorname{diag}(a)E_{N-1}^\top` (``init="aligned"``) stay of that form under
gradient flow: each layer's gradient :math:`A_j^\top R B_j^\top` is diagonal in the same bases with
entries :math:`a^{N-1}(a^N - s)`, the same for every layer, so the start's balancedness is kept and
every mode moves alone. With :math:`\sigma = a^N` (the end-to-end singular value),

.. math:: \dot\sigma_k = N\,\sigma_k^{2 - 2/N}\,(s_k - \sigma_k), \qquad
          L = \tfrac12\sum_k(\sigma_k - s_k)^2 ,

which for :math:`N = 2` is Saxe et al.'s logistic
:math:`\sigma(t) = s e^{2st}/(e^{2st} - 1 + s/\sigma_0)` (``theory.deep_linear.saxe_mode``).

Exact for gradient flow on a target-only problem (whitened inputs) from ``init="aligned"``;
not for data with a non-identity input covariance, a random or a given start, or a discrete
algorithm, which :func:`sims.deep_linear.simulate` refuses in reduced coordinates. The ODE is not
stiff (rates :math:`N\sigma^{2-2/N}` stay below :math:`N s^{2-2/N}`): Dormand-Prince integrates it.
Cost per step and run: O(rank) instead of O(sum of the layer sizes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.backend import device_of as _device, asarray, namespace
from ..engine.driver import Model
from .problem import Problem

__all__ = ["aligned_layers", "balanced_frames", "balanced_layers", "end_to_end_model", "reduced_model",
           "reduced_refusal", "scalar_model", "scalar_refusal"]


def reduced_refusal(problem: Problem, init: str, layers: Any, record_sharpness: bool, record_layers: bool) -> str:
    """Why the reduction does not apply (empty when it does): the mode ODEs, or for a scalar network the
    one-dimensional flow of :func:`scalar_model` (any start)."""
    if problem.X is None and all(w == 1 for w in problem.widths):
        return scalar_refusal(problem, record_sharpness)
    if problem.X is not None:
        return "the problem has data (the reduction needs whitened inputs: a target-only problem)"
    if layers is not None:
        return "explicit layers were given (the reduction needs init='aligned' or 'balanced')"
    if init not in ("aligned", "balanced"):
        return f"init={init!r} (the reduction needs a balanced start: init='aligned' or 'balanced')"
    if record_sharpness:
        return "record_sharpness needs the full Hessian"
    if record_layers:
        return "record_layers records the full parameters"
    return ""


def aligned_layers(problem: Problem, sigma: np.ndarray) -> list[np.ndarray]:
    """The layers ``(B, h_j, h_{j-1})`` of the aligned balanced network with end-to-end modes ``sigma`` (B, r)."""
    u, _, v = problem.svd()
    n, widths = problem.depth, problem.widths
    a = np.maximum(sigma, 0.0) ** (1.0 / n)
    layers = []
    for j in range(n):
        left = u if j == n - 1 else np.eye(widths[j + 1])[:, : u.shape[1]]
        right = v if j == 0 else np.eye(widths[j])[:, : u.shape[1]]
        layers.append(np.einsum("ik,bk,jk->bij", left, a, right))
    return layers


def balanced_frames(problem: Problem, seed: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Random orthonormal frames of the balanced start: ``P`` (d_out, k), ``Q`` (d_in, k) and one ``O_j``
    (h_j, k) per hidden layer, k = min(d_out, d_in, hidden widths), drawn on the host from ``seed``."""
    from ..engine.backend import init_rng

    rng = init_rng(seed)
    widths = problem.widths
    k = min(widths)
    p, _, qt = np.linalg.svd(rng.standard_normal((widths[-1], widths[0])))
    frames = [np.linalg.qr(rng.standard_normal((h, k)))[0] for h in widths[1:-1]]
    return p[:, :k], qt[:k].T, frames


def balanced_layers(problem: Problem, alpha: np.ndarray, seed: int) -> list[np.ndarray]:
    r"""The balanced start with random frames: :math:`W_1 = O_1 a Q^\top`, :math:`W_j = O_j a O_{j-1}^\top`,
    :math:`W_N = P a O_{N-1}^\top`, :math:`a = \alpha^{1/N}`, so :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`
    and the end-to-end :math:`W = \alpha P Q^\top` is not aligned with the target. Layers ``(B, h_j, h_{j-1})``."""
    p, q, frames = balanced_frames(problem, seed)
    a = np.asarray(alpha, dtype=float) ** (1.0 / problem.depth)
    lefts, rights = frames + [p], [q] + frames
    return [a[:, None, None] * (left @ right.T)[None] for left, right in zip(lefts, rights)]


def end_to_end_model(problem: Problem, alpha: np.ndarray, *, seed: int, backend: str, dtype: str, device: Any,
                     meta: dict[str, Any]) -> Model:
    r"""The end-to-end matrix of a balanced network as the driver's :class:`~sims.engine.driver.Model`.

    Identity (Arora, Cohen & Hazan 2018, Thm 1): if the layers start balanced,
    :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`, gradient flow keeps them balanced and the end-to-end
    :math:`W = W_N\cdots W_1` obeys

    .. math:: \dot W = -\sum_{j=1}^{N} (WW^\top)^{\frac{j-1}{N}}\,\nabla L(W)\,(W^\top W)^{\frac{N-j}{N}},

    here with the target loss :math:`L = \tfrac12\|W - \Phi\|_F^2`, so
    :math:`\nabla L = W - \Phi`. With the
    full SVD :math:`W = U\operatorname{diag}(s)V^\top` (singular values padded with zeros to each side),
    the sum is :math:`U\,(K \circ U^\top\nabla L\,V)\,V^\top` with
    :math:`K_{ik} = \sum_j s_i^{2(j-1)/N} s_k^{2(N-j)/N}` (:math:`0^0 = 1`): one batched SVD per evaluation,
    O(d_out d_in min(d_out, d_in)) per run instead of the layers' products and their gradients. Exact
    for gradient flow from any balanced start (``init="balanced"``: random frames, not aligned with
    the target); the layers themselves are not a function of :math:`W` (their frames rotate), so the
    final state holds the end-to-end ``product`` and ``modes``, not ``layer_j``. The ODE is not stiff
    (its rates are those of the mode ODEs): Dormand-Prince integrates it.
    """
    xp = namespace(backend)
    n = problem.depth
    p, q, _ = balanced_frames(problem, seed)
    w0 = np.asarray(alpha, dtype=float)[:, None, None] * (p @ q.T)[None]
    target = asarray(problem.target, xp, dtype, device)
    u_t, _, v_t = problem.svd()
    u_dev, v_dev = asarray(u_t, xp, dtype, device), asarray(v_t, xp, dtype, device)
    d_out, d_in = problem.widths[-1], problem.widths[0]

    def kernel(s: Any) -> Any:
        batch = s.shape[0]
        pad = lambda m: xp.concat([s, xp.zeros((batch, m - s.shape[1]), dtype=s.dtype, device=_device(s))], axis=1)  # noqa: E731
        rows, cols = pad(d_out), pad(d_in)
        k = xp.zeros((batch, d_out, d_in), dtype=s.dtype, device=_device(s))
        for j in range(1, n + 1):
            k = k + (rows ** (2.0 * (j - 1) / n))[:, :, None] * (cols ** (2.0 * (n - j) / n))[:, None, :]
        return k

    def loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
        (w,) = state
        res = w - target
        uu, sv, vh = xp.linalg.svd(w, full_matrices=True)
        inner = xp.matmul(xp.matmul(xp.permute_dims(uu, (0, 2, 1)), res), xp.permute_dims(vh, (0, 2, 1)))
        direction = xp.matmul(xp.matmul(uu, kernel(sv) * inner), vh)
        return xp.sum(res * res, axis=(1, 2)) / 2, (direction,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        (w,) = state
        res = w - target
        modes = xp.sum(xp.matmul(u_dev.T, w) * v_dev.T, axis=2)
        return {"loss": xp.sum(res * res, axis=(1, 2)) / 2, "modes": modes,
                "balancedness": xp.zeros((w.shape[0],), dtype=w.dtype, device=_device(w))}

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        (w,) = host
        return {"product": w, "modes": np.einsum("ik,bij,jk->bk", u_t, w, v_t)}

    return Model(
        name="deep_linear", state0=(asarray(w0, xp, dtype, device),), loss_grad=loss_grad, observe=observe,
        final=final, meta=meta, backend=backend, dtype=dtype, n_samples=None, t_max=50.0, atol=1e-14,
        samples_hint="use Problem.from_data(X, Y, hidden) with coordinates='full'", coordinates="reduced",
    )


def reduced_model(problem: Problem, alpha: np.ndarray, *, backend: str, dtype: str, device: Any,
                  meta: dict[str, Any]) -> Model:
    """The mode ODEs as the driver's :class:`~sims.engine.driver.Model` (``alpha``: the (B,) initial scales)."""
    xp = namespace(backend)
    _, s_host, _ = problem.svd()
    n = problem.depth
    s = asarray(s_host, xp, dtype, device)
    sigma0 = alpha[:, None] * np.ones_like(s_host)[None, :]  # W(0) = alpha U V^T

    def loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
        (sigma,) = state
        res = sigma - s
        rate = n * sigma ** (2.0 - 2.0 / n) if n > 1 else xp.ones_like(sigma)
        return xp.sum(res * res, axis=1) / 2, (rate * res,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        (sigma,) = state
        res = sigma - s
        return {"loss": xp.sum(res * res, axis=1) / 2, "modes": sigma,
                "balancedness": xp.zeros((sigma.shape[0],), dtype=sigma.dtype)}

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        (sigma,) = host
        u, _, v = problem.svd()
        out = {f"layer_{j + 1}": w for j, w in enumerate(aligned_layers(problem, sigma))}
        out["product"] = np.einsum("ik,bk,jk->bij", u, sigma, v)
        out["modes"] = sigma
        return out

    return Model(
        name="deep_linear", state0=(asarray(sigma0, xp, dtype, device),), loss_grad=loss_grad, observe=observe,
        final=final, meta=meta, backend=backend, dtype=dtype, n_samples=None, t_max=50.0, atol=1e-14,
        samples_hint="use Problem.from_data(X, Y, hidden) with coordinates='full'", coordinates="reduced",
    )


def scalar_refusal(problem: Problem, record_sharpness: bool) -> str:
    """Why the scalar network's one-dimensional reduction does not apply (empty when it does)."""
    if problem.X is not None or any(w != 1 for w in problem.widths):
        return "the problem is not a scalar network (Problem.scalar)"
    if record_sharpness:
        return "record_sharpness needs the full Hessian"
    return ""


def scalar_model(problem: Problem, w0: np.ndarray, *, record_layers: bool, backend: str, dtype: str, device: Any,
                 meta: dict[str, Any]) -> Model:
    r"""The scalar network :math:`f = w_1\cdots w_D` from any start ``w0`` (B, D), as one ODE per run.

    Identity (Du, Hu & Lee 2018; Kreisler et al. 2023, Sec. 3): gradient flow conserves
    :math:`w_i^2 - w_j^2`. Take the coordinate :math:`m` smallest in magnitude at the start and
    :math:`c_j = w_j(0)^2 - w_m(0)^2 \ge 0`: then :math:`w_j = \operatorname{sign}(w_j(0))\sqrt{w_m^2 + c_j}`
    never vanishes when :math:`c_j > 0` (its sign is fixed), and :math:`w_j = (w_j(0)/w_m(0))\,w_m` when
    :math:`c_j = 0` (the two cross zero together), so the flow is the one-dimensional
    :math:`\dot w_m = -(f - y)\prod_{j\ne m} w_j`. Exact for gradient flow from any start.
    """
    xp = namespace(backend)
    y = float(problem.target[0, 0])
    batch, depth = w0.shape
    m = np.argmin(np.abs(w0), axis=1)
    onehot = np.zeros((batch, depth))
    onehot[np.arange(batch), m] = 1.0
    wm = w0[np.arange(batch), m]
    c = np.maximum(w0**2 - wm[:, None] ** 2, 0.0)
    tie = c == 0.0
    ratio = np.where(tie, w0 / np.where(wm[:, None] == 0, 1.0, wm[:, None]), 0.0)
    put = lambda a: asarray(a, xp, dtype, device)  # noqa: E731
    c_d, sgn_d, ratio_d, tie_d, hot_d = put(c), put(np.sign(w0)), put(ratio), put(tie.astype(float)), put(onehot)
    sign_y = 1.0 if y > 0 else -1.0
    balance = put(np.max(np.abs(np.diff(w0**2, axis=1)), axis=1) if depth > 1 else np.zeros(batch))  # conserved

    def weights(z: Any) -> Any:
        return tie_d * ratio_d * z + (1.0 - tie_d) * sgn_d * xp.sqrt(z * z + c_d)

    def loss_grad(state: tuple[Any, ...], weights_: Any = None) -> tuple[Any, tuple[Any]]:
        (z,) = state  # (B, 1)
        w = weights(z)
        f = xp.prod(w, axis=1, keepdims=True)
        others = xp.prod(hot_d + (1.0 - hot_d) * w, axis=1, keepdims=True)
        return ((f - y) ** 2)[:, 0] / 2, ((f - y) * others,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        (z,) = state
        w = weights(z)
        f = xp.prod(w, axis=1)
        out = {"loss": (f - y) ** 2 / 2, "modes": xp.reshape(f * sign_y, (-1, 1)),
               "balancedness": balance}
        if record_layers:
            out["params"] = w
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        (z,) = host
        w = tie * ratio * z + (~tie) * np.sign(w0) * np.sqrt(z * z + c)
        out = {f"layer_{j + 1}": w[:, j].reshape(-1, 1, 1) for j in range(depth)}
        out["product"] = np.prod(w, axis=1).reshape(-1, 1, 1)
        return out

    return Model(
        name="deep_linear", state0=(put(wm[:, None]),), loss_grad=loss_grad, observe=observe, final=final,
        meta=meta, backend=backend, dtype=dtype, n_samples=None, t_max=50.0, atol=1e-14, compact=False,
        coordinates="reduced",
    )
