"""The fast ops against their references: values and gradients."""

import pytest
import torch

from stylegan2.ops import (
    assert_shape,
    demod_noise_act,
    demod_noise_act_reference,
    fused_leaky_relu,
    fused_leaky_relu_reference,
    make_kernel,
    scaled_conv2d,
    scaled_conv2d_reference,
    separable_factors,
    upfirdn2d,
    upfirdn2d_reference,
)

# (up, down, pad, input HxW): every configuration the generator uses, plus odd ones.
CASES = [
    (1, 1, (1, 1), (9, 9)),  # blur after a transposed conv
    (2, 1, (2, 1), (8, 8)),  # to_rgb skip upsampling
    (2, 1, (1, 1), (5, 7)),
    (1, 1, (2, 1), (6, 11)),
    (1, 2, (1, 1), (8, 8)),  # downsampling (discriminator-style)
    (1, 1, (0, 0), (6, 6)),
    (3, 1, (2, 2), (4, 5)),
    (2, 1, (-1, 2), (6, 6)),  # negative pad crops
    (1, 1, (1, 2, 0, 3), (7, 6)),  # per-axis pads
]


@pytest.mark.parametrize("taps", [[1, 3, 3, 1], [1, 2, 1], [1, 4, 6, 4, 1], [2.0, -1.0]])
@pytest.mark.parametrize("up,down,pad,hw", CASES)
def test_upfirdn2d_matches_reference(taps, up, down, pad, hw):
    torch.manual_seed(0)
    kernel = make_kernel(taps).double() * up**2
    x = torch.randn(2, 3, *hw, dtype=torch.float64, requires_grad=True)
    ref = upfirdn2d_reference(x, kernel, up=up, down=down, pad=pad)
    fast = upfirdn2d(x, kernel, up=up, down=down, pad=pad, separable=separable_factors(kernel))
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    (grad_fast,) = torch.autograd.grad(fast, x, g)
    torch.testing.assert_close(grad_fast, grad_ref, rtol=0, atol=1e-12)


def test_upfirdn2d_gradcheck():
    kernel = make_kernel([1, 3, 3, 1]).double() * 4
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    sep = separable_factors(kernel)
    assert torch.autograd.gradcheck(
        lambda t: upfirdn2d(t, kernel, up=2, pad=(2, 1), separable=sep), (x,)
    )


def test_non_separable_kernel_is_detected_and_falls_back():
    kernel = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert separable_factors(kernel) is None
    x = torch.randn(1, 1, 5, 5)
    torch.testing.assert_close(
        upfirdn2d(x, kernel, pad=(1, 0)), upfirdn2d_reference(x, kernel, pad=(1, 0))
    )


def test_separable_factors_recover_the_kernel():
    kernel = make_kernel([1, 3, 3, 1])
    ky, kx = separable_factors(kernel)
    torch.testing.assert_close(torch.outer(torch.tensor(ky), torch.tensor(kx)).float(), kernel)


@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_leaky_relu_matches_reference(with_bias):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True) if with_bias else None
    inputs = (x, bias) if with_bias else (x,)
    ref = fused_leaky_relu_reference(x, bias)
    fast = fused_leaky_relu(x, bias)
    torch.testing.assert_close(fast, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(fast, inputs, g), torch.autograd.grad(ref, inputs, g)
    )


def test_fused_leaky_relu_on_2d_input():
    x = torch.randn(4, 7, requires_grad=True)
    b = torch.randn(7, requires_grad=True)
    torch.testing.assert_close(fused_leaky_relu(x, b), fused_leaky_relu_reference(x, b))


def test_assert_shape():
    assert_shape(torch.zeros(2, 3), [2, None])
    with pytest.raises(AssertionError, match="expected"):
        assert_shape(torch.zeros(2, 3), [2, 4])
    with pytest.raises(AssertionError):
        assert_shape(torch.zeros(2, 3), [2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_upfirdn2d_cuda_matches_cpu():
    kernel = make_kernel([1, 3, 3, 1]) * 4
    x = torch.randn(2, 8, 16, 16)
    sep = separable_factors(kernel)
    cpu = upfirdn2d(x, kernel, up=2, pad=(2, 1), separable=sep)
    gpu = upfirdn2d(x.cuda(), kernel.cuda(), up=2, pad=(2, 1), separable=sep)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("noise_batch", [1, 3])
@pytest.mark.parametrize("with_bias", [True, False])
def test_demod_noise_act_matches_reference(noise_batch, with_bias):
    torch.manual_seed(0)
    f64 = {"dtype": torch.float64, "requires_grad": True}
    x = torch.randn(3, 4, 5, 6, **f64)
    d = torch.rand(3, 4, **f64)
    nw = torch.randn(1, **f64)
    noise = torch.randn(noise_batch, 1, 5, 6, **f64)
    bias = torch.randn(4, **f64) if with_bias else None
    inputs = (x, d, nw, noise) + ((bias,) if with_bias else ())
    ref = demod_noise_act_reference(x, d, nw, noise, bias)
    fast = demod_noise_act(x, d, nw, noise, bias)
    torch.testing.assert_close(fast, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(fast, inputs, g), torch.autograd.grad(ref, inputs, g)
    )


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, False)])
def test_scaled_conv2d_matches_reference(transposed, needs):
    """Values and each gradient alone or together (the probe needs the styles' gradient only,
    a frozen layer the input's only, a trained one all three)."""
    torch.manual_seed(0)
    f64 = {"dtype": torch.float64}
    x = torch.randn(2, 4, 5, 6, **f64).requires_grad_(needs[0])
    s = torch.rand(2, 4, 1, 1, **f64).requires_grad_(needs[1])
    w = torch.randn(3, 4, 3, 3, **f64).requires_grad_(needs[2])
    inputs = [t for t in (x, s, w) if t.requires_grad]
    ref = scaled_conv2d_reference(x, s, w, padding=1, transposed=transposed)
    fast = scaled_conv2d(x, s, w, padding=1, transposed=transposed)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-12)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(fast, inputs, g), torch.autograd.grad(ref, inputs, g)
    )
