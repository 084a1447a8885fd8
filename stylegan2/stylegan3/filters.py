"""The low-pass FIR filters of StyleGAN3's layers, designed as NVIDIA's code designs them.

A pickle carries the designed filters as buffers and loading uses those; the design is
needed to build a generator from its arguments alone (tests, random weights, our own
checkpoints are checked against it). NVIDIA calls `scipy.signal.firwin` (a Kaiser-window
sinc) and, for config R's radial filters, `scipy.special.j1`; both are written out here in
NumPy and torch (`torch.special.bessel_j1`) so the generator needs no SciPy.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def kaiser_atten(numtaps: int, width: float) -> float:
    """Stop-band attenuation (dB) of a Kaiser-window filter of `numtaps` taps and transition
    `width` (a fraction of Nyquist): Kaiser's formula, as in `scipy.signal.kaiser_atten`."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(atten: float) -> float:
    """The Kaiser window's beta for an attenuation in dB (`scipy.signal.kaiser_beta`)."""
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """A windowed-sinc low-pass filter with unit DC gain: `scipy.signal.firwin(numtaps,
    cutoff, width=width, fs=fs)` (cutoff, width and fs in the same unit). [numtaps] float64"""
    nyquist = fs / 2
    beta = kaiser_beta(kaiser_atten(numtaps, width / nyquist))
    m = np.arange(numtaps) - (numtaps - 1) / 2
    taps = (cutoff / nyquist) * np.sinc((cutoff / nyquist) * m) * np.kaiser(numtaps, beta)
    return taps / taps.sum()


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """A radially symmetric low-pass filter: the jinc (the 2-D ideal low-pass) times a
    separable Kaiser window, normalised to unit DC gain. [numtaps, numtaps] float64"""
    x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    j1 = torch.special.bessel_j1(torch.from_numpy(2 * cutoff * np.pi * r)).numpy()
    f = j1 / (np.pi * r)
    beta = kaiser_beta(kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return f / f.sum()


def design_lowpass_filter(
    numtaps: int,  # 1 means no filter (an identity)
    cutoff: float,  # cutoff frequency
    width: float,  # transition band width (twice the half-width f_h)
    fs: float,  # the sampling rate the filter runs at
    radial: bool = False,  # a 2-D jinc instead of a separable Kaiser filter
) -> Tensor | None:
    """The filter NVIDIA's `SynthesisLayer.design_lowpass_filter` registers as a buffer:
    None for one tap, [numtaps] for a separable filter, [numtaps, numtaps] for a radial one
    (float32)."""
    if numtaps < 1:
        raise ValueError(f"a filter needs at least one tap (got {numtaps})")
    if numtaps == 1:
        return None
    if radial:
        if numtaps % 2:
            raise ValueError(f"a radial filter needs an even number of taps (got {numtaps})")
        return torch.as_tensor(jinc_lowpass(numtaps, cutoff, width, fs), dtype=torch.float32)
    return torch.as_tensor(kaiser_lowpass(numtaps, cutoff, width, fs), dtype=torch.float32)
