"""Batched linear algebra shared by the layered models: transposes and chained products of ``(B, m, n)`` stacks."""

from __future__ import annotations

from typing import Any


from .backend import device_of as _device, xp_of

__all__ = ["chains", "layer_gradients", "product", "transpose"]


def transpose(x: Any) -> Any:
    """Swap the last two axes of a stack of matrices (``(B, m, n)``, or any leading axes)."""
    nd = len(x.shape)
    return xp_of(x).permute_dims(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def chains(layers: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """Prefix products ``B_j = W_{j-1}...W_1`` (``B_1 = I``) and suffix products ``A_j = W_N...W_{j+1}`` (``A_N = I``).

    The identities are not multiplied in: ``B_2 = W_1`` and ``A_{N-1} = W_N`` as they are (a product with an
    identity returns every finite entry exactly, so only the sign of a zero could differ, and it saves two of
    the chain's matrix products).
    """
    xp = xp_of(layers[0])
    batch = layers[0].shape[0]
    d_in, d_out = layers[0].shape[2], layers[-1].shape[1]
    pre = [xp.broadcast_to(xp.eye(d_in, dtype=layers[0].dtype, device=_device(layers[0])), (batch, d_in, d_in))]
    for k, w in enumerate(layers[:-1]):
        pre.append(w if k == 0 else xp.matmul(w, pre[-1]))
    suf = [xp.broadcast_to(xp.eye(d_out, dtype=layers[0].dtype, device=_device(layers[0])), (batch, d_out, d_out))]
    for k, w in enumerate(layers[:0:-1]):
        suf.append(w if k == 0 else xp.matmul(suf[-1], w))
    return pre, suf[::-1]


def layer_gradients(pre: list[Any], suf: list[Any], resid: Any) -> tuple[Any, ...]:
    r"""The gradients :math:`A_j^\top R\, B_j^\top` of every layer of a product, from :func:`chains`' prefix and
    suffix products and the end-to-end gradient ``R``: the identities at the two ends are not multiplied in."""
    xp = xp_of(resid)
    last = len(pre) - 1
    out = []
    for j, (a, b) in enumerate(zip(suf, pre)):
        g = resid if j == last else xp.matmul(transpose(a), resid)
        out.append(g if j == 0 else xp.matmul(g, transpose(b)))
    return tuple(out)


def product(layers: tuple[Any, ...]) -> Any:
    r"""The end-to-end matrix :math:`W_N \cdots W_1`, shape ``(B, d_out, d_in)`` (NumPy arrays too)."""
    xp = xp_of(layers[0])
    out = layers[0]
    for w in layers[1:]:
        out = xp.matmul(w, out)
    return out
