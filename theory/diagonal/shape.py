"""Azulay et al. 2021: the shape of the initialisation, its potential, and the conversion to this library's
parameterisation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._format import shown
from .common import _as_real, _check_alpha

__all__ = ["azulay_init", "azulay_k", "azulay_q", "azulay_to_library", "shape_equivalent_alpha"]


def shape_equivalent_alpha(alpha: Any, shape: Any) -> np.ndarray:
    r"""The scale of the potential minimised by a diagonal network of initialisation shape ``shape``.

    Model (Azulay et al. 2021, "On the Implicit Bias of Initialization Shape",
    Sec. 4): :math:`w = u_+ \odot v_+ - u_- \odot v_-`, initialised with
    :math:`u_\pm(0) = u_0`, :math:`v_\pm(0) = v_0`, parametrised here by the
    scale :math:`\alpha^2 = u_0 v_0` and the shape
    :math:`s = (u_0^2 - v_0^2)/(u_0^2 + v_0^2) \in (-1, 1)`.

    Derivation (this library; it reproduces Azulay et al.'s closed form):
    gradient flow conserves :math:`\delta = u_\pm^2 - v_\pm^2` and gives
    :math:`\dot w_\pm = \mp\sqrt{\delta^2 + 4w_\pm^2}\,\nabla L`, whose solution
    is :math:`w = -(u_0^2 + v_0^2)\sinh(2G)`, :math:`G = \int \nabla L`. The
    limit therefore minimises
    :math:`\sum_i K_i - \sqrt{K_i^2 + w_i^2} + w_i\operatorname{arcsinh}(w_i/K_i)`
    with :math:`K = u_0^2 + v_0^2`, which is :math:`Q_{\alpha'}` of
    :func:`q_alpha` with :math:`2\alpha'^2 = K`:

    .. math:: \alpha' = \alpha\,(1 - s^2)^{-1/4}.

    Only :math:`u_0^2 + v_0^2` enters: at a fixed product :math:`u_0 v_0`, an
    unbalanced shape enlarges the effective scale and pushes the limit toward
    the kernel regime. (Azulay et al. write the scale as
    :math:`k = 2(u_0^2 + v_0^2)` for their normalisation of the model; in this
    library's normalisation it is :math:`K = u_0^2 + v_0^2`, confirmed by the
    claim ``diagonal.init_shape``.)
    """
    a = _check_alpha(alpha)
    s = _as_real("shape", shape, (0, 1))
    if np.any(np.abs(s) >= 1):
        raise ValueError(f"shape must lie in (-1, 1); got {shown(shape)}")
    return a * (1 - s**2) ** -0.25


def azulay_init(alpha: Any, shape: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Azulay et al. 2021's initialisation: :math:`u_0 = \sqrt{\alpha(1 - s)/(1 + s)}`,
    :math:`v_0 = \sqrt{\alpha(1 + s)/(1 - s)}`, so :math:`u_0 v_0 = \alpha` (Sec. 4, before Theorem 4.1).

    Their :math:`\alpha` is this library's :math:`\alpha^2` and their shape is not the library's:
    see :func:`azulay_to_library`.
    """
    a = _check_alpha(alpha)
    s = _as_real("shape", shape, (0, 1))
    if np.any(np.abs(s) >= 1):
        raise ValueError(f"shape must lie in (-1, 1); got {shown(shape)}")
    return np.sqrt(a * (1 - s) / (1 + s)), np.sqrt(a * (1 + s) / (1 - s))


def azulay_k(alpha: Any, shape: Any) -> np.ndarray:
    r"""The scale :math:`k = 2u_0^2 + 2v_0^2 = 4\alpha(1 + s^2)/(1 - s^2)` of Azulay et al.'s potential (Thm 4.1)."""
    u0, v0 = azulay_init(alpha, shape)
    return 2 * u0**2 + 2 * v0**2


def azulay_q(x: Any, k: Any) -> np.ndarray:
    r"""Azulay et al. 2021, Theorem 4.1: :math:`q_k(x) = \frac{k}{4}\big(1 - \sqrt{1 + 4x^2/k^2}
    + \frac{2x}{k}\operatorname{arcsinh}\frac{2x}{k}\big)`, so :math:`q_k'(x) = \tfrac12\operatorname{arcsinh}(2x/k)`.

    With :math:`k = 2K`, :math:`K = u_0^2 + v_0^2`, it is half of this library's potential
    :math:`\alpha'^2 q(x/\alpha'^2)` at :math:`2\alpha'^2 = K` (:func:`shape_equivalent_alpha`): the same minimiser.
    """
    x = np.asarray(x, dtype=float)
    k = _check_alpha(k)
    z = 2 * x / k
    return (k / 4) * (-z * (z / (1.0 + np.hypot(1.0, z))) + z * np.arcsinh(z))


def azulay_to_library(alpha: Any, shape: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Azulay et al.'s :math:`(\alpha, s)` as this library's ``(alpha, shape)`` of
    :func:`sims.diagonal.simulate`: :math:`\alpha_{lib} = \sqrt\alpha` (the library fixes
    :math:`u_0v_0 = \alpha_{lib}^2`) and :math:`s_{lib} = (u_0^2 - v_0^2)/(u_0^2 + v_0^2) = -2s/(1 + s^2)`."""
    u0, v0 = azulay_init(alpha, shape)
    return np.sqrt(u0 * v0), (u0**2 - v0**2) / (u0**2 + v0**2)
