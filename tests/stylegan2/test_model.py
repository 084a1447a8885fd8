"""The generator: checkpoint layout, reference outputs, forward() semantics, fast vs reference ops."""

import csv

import pytest
import torch

from stylegan2 import Generator
from stylegan2.model import ModulatedConv2d

from .conftest import rebuild_reference_weights


def _manifest(reference_dir, config):
    with open(reference_dir / "stylegan2_state_dict_manifest.tsv") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    return [
        (key, tuple(int(d) for d in shape.split("x"))) for cfg, key, shape in rows if cfg == config
    ]


@pytest.mark.parametrize("size", [1024, 512, 256])
def test_state_dict_matches_manifest(reference_dir, size):
    expected = _manifest(reference_dir, f"g_ema_{size}")
    assert expected, "manifest has no rows for this size"
    got = [(k, tuple(v.shape)) for k, v in Generator(size).state_dict().items()]
    assert got == expected  # same keys, same shapes, same order


@pytest.fixture(scope="module")
def reference_generator(reference_64):
    g = Generator(reference_64["size"])
    g.load_state_dict(rebuild_reference_weights(reference_64), strict=True)
    return g.eval()


def test_reference_keys_and_latent_count(reference_64, reference_generator):
    assert [(k, tuple(v.shape)) for k, v in reference_generator.state_dict().items()] == [
        (k, tuple(s)) for k, s in reference_64["keys_shapes"]
    ]
    assert reference_generator.n_latent == 10


@pytest.mark.parametrize("reference_ops", [False, True])
def test_matches_reference_outputs(reference_64, reference_generator, reference_ops):
    g = reference_generator.set_reference_ops(reference_ops)
    try:
        with torch.no_grad():
            img, lat = g([reference_64["z"]], randomize_noise=False, return_latents=True)
            img_w, none = g([reference_64["w"]], input_is_latent=True, randomize_noise=False)
    finally:
        g.set_reference_ops(False)
    assert none is None
    torch.testing.assert_close(lat, reference_64["lat_z"], rtol=0, atol=1e-4)
    torch.testing.assert_close(img, reference_64["img_z"], rtol=0, atol=1e-4)
    torch.testing.assert_close(img_w, reference_64["img_w"], rtol=0, atol=1e-4)


def _small(seed=0, size=32):
    torch.manual_seed(seed)
    return Generator(size, style_dim=32, n_mlp=2, channel_multiplier=1)


def test_fast_and_reference_ops_agree_with_gradients():
    # float64: in float32 the mapping network (weights stored x100) amplifies rounding.
    g = _small().double()
    z = torch.randn(2, 32, dtype=torch.float64)
    noise = [n.double() for n in g.make_noise()]

    def run(reference):
        g.set_reference_ops(reference)
        g.zero_grad(set_to_none=True)
        img, _ = g([z], noise=noise)
        weights = torch.linspace(-1, 1, img.numel(), dtype=img.dtype).view_as(img)
        (img * weights).sum().backward()
        return img.detach(), {n: p.grad.clone() for n, p in g.named_parameters()}

    img_fast, grads_fast = run(False)
    img_ref, grads_ref = run(True)
    torch.testing.assert_close(img_fast, img_ref, rtol=1e-10, atol=1e-10)
    assert grads_fast.keys() == grads_ref.keys()
    for name in grads_ref:
        torch.testing.assert_close(
            grads_fast[name], grads_ref[name], rtol=1e-8, atol=1e-10, msg=name
        )


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_activation_scaling_equals_grouped_weights(upsample):
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, 8, upsample=upsample).double()
    x = torch.randn(3, 6, 7, 7, dtype=torch.float64)
    s = torch.randn(3, 8, dtype=torch.float64)
    fast = conv(x, s)
    conv.grouped = True
    grouped = conv(x, s)
    torch.testing.assert_close(fast, grouped)


def test_a_w_plus_of_another_layer_count_is_refused():
    """forward()'s shape contract: a W+ is [N, n_latent, style_dim]. One entry too many used
    to be cut silently (a code inverted for another generator); now it is an error."""
    g = _small(size=8).eval()  # n_latent 4
    with torch.no_grad():
        image, _ = g([torch.zeros(1, 4, 32)], input_is_latent=True)
        assert image.shape == (1, 3, 8, 8)
        for wrong in (torch.zeros(1, 5, 32), torch.zeros(1, 4, 31)):
            with pytest.raises(AssertionError, match=r"expected \[None, 4, 32\]"):
                g([wrong], input_is_latent=True)


def test_randomize_noise_false_is_deterministic_and_true_is_not():
    g = _small().eval()
    for name, p in g.named_parameters():
        if name.endswith("noise.weight"):
            p.data.fill_(0.5)  # zero at initialisation, which would hide the noise
    z = torch.randn(2, 32)
    with torch.no_grad():
        a, _ = g([z], randomize_noise=False)
        b, _ = g([z], randomize_noise=False)
        c, _ = g([z])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_explicit_noise_list_is_used():
    g = _small().eval()
    z = torch.randn(1, 32)
    buffers = [getattr(g.noises, f"noise_{i}") for i in range(g.num_layers)]
    with torch.no_grad():
        a, _ = g([z], randomize_noise=False)
        b, _ = g([z], noise=buffers)
    assert torch.equal(a, b)


def test_z_w_and_w_plus_inputs_agree():
    g = _small().eval()
    z = torch.randn(2, 32)
    with torch.no_grad():
        from_z, latent = g([z], randomize_noise=False, return_latents=True)
        w = g.get_latent(z)
        from_w, _ = g([w], input_is_latent=True, randomize_noise=False)
        w_plus = w.unsqueeze(1).repeat(1, g.n_latent, 1)
        from_wp, _ = g([w_plus], input_is_latent=True, randomize_noise=False)
    assert latent.shape == (2, g.n_latent, 32)
    torch.testing.assert_close(from_z, from_w)
    torch.testing.assert_close(from_z, from_wp)


def test_truncation_pulls_towards_truncation_latent():
    g = _small().eval()
    z = torch.randn(2, 32)
    with torch.no_grad():
        mean = g.mean_latent(256)
        assert mean.shape == (1, 32)
        _, lat = g([z], truncation=0.5, truncation_latent=mean, return_latents=True)
        w = g.get_latent(z)
    torch.testing.assert_close(lat[:, 0], mean + 0.5 * (w - mean))
    with torch.no_grad():
        zero, _ = g([z], truncation=0.0, truncation_latent=mean, randomize_noise=False)
        at_mean, _ = g([mean.expand(2, -1)], input_is_latent=True, randomize_noise=False)
    torch.testing.assert_close(zero, at_mean)


def test_style_mixing_uses_inject_index():
    g = _small().eval()
    z1, z2 = torch.randn(2, 32), torch.randn(2, 32)
    with torch.no_grad():
        _, lat = g([z1, z2], inject_index=3, return_latents=True)
        w1, w2 = g.get_latent(z1), g.get_latent(z2)
    assert lat.shape[1] == g.n_latent
    torch.testing.assert_close(lat[:, :3], w1.unsqueeze(1).expand(-1, 3, -1))
    torch.testing.assert_close(lat[:, 3:], w2.unsqueeze(1).expand(-1, g.n_latent - 3, -1))
    with torch.no_grad():
        _, lat_random = g([z1, z2], return_latents=True)
    assert lat_random.shape == lat.shape


def test_output_shapes_for_each_size():
    for size in (8, 16, 64):
        g = Generator(size, style_dim=16, n_mlp=1, channel_multiplier=1)
        img, _ = g([torch.randn(1, 16)])
        assert img.shape == (1, 3, size, size)
        assert g.n_latent == 2 * g.log_size - 2
        assert len(g.make_noise()) == g.num_layers


def test_invalid_size_is_refused():
    with pytest.raises(ValueError, match="power of two"):
        Generator(100)


def test_loaded_blur_kernel_is_honoured():
    """A checkpoint's kernel buffer wins over the constructor's, fast path included."""
    g = _small()
    sd = g.state_dict()
    for key in sd:
        if key.endswith("blur.kernel") or key.endswith("upsample.kernel"):
            factor = 4.0
            sd[key] = (
                torch.outer(torch.tensor([1.0, 2.0, 1.0, 0.0]), torch.tensor([1.0, 2.0, 1.0, 0.0]))
                / 16
                * factor
            )
    g.load_state_dict(sd)
    z = torch.randn(1, 32)
    noise = g.make_noise()
    with torch.no_grad():
        fast, _ = g([z], noise=noise)
        ref, _ = g.set_reference_ops(True)([z], noise=noise)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(reference_64, reference_generator):
    g = reference_generator.cuda()
    try:
        with torch.no_grad():
            img, _ = g([reference_64["z"].cuda()], randomize_noise=False)
    finally:
        reference_generator.cpu()
    torch.testing.assert_close(img.cpu(), reference_64["img_z"], rtol=0, atol=1e-3)
