"""DISCO: exact dilated taps, the fitted proxy basis, its disk cache and the mixed basis."""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from baselines import disco
from baselines.disco import (
    DiscoFit,
    default_cache_dir,
    dilated_basis,
    disco_basis,
    equivariance_loss,
    fit_proxy_basis,
    load_or_fit_proxy_basis,
    mnist_disco,
    proxy_cache_key,
)

# The STL configuration of specs section 7 (k = 5, E = 3): small enough for a fit in a test.
K, E, SCALES = 5, 3, [1.0, 1.41, 2.0]
TINY = DiscoFit(steps=3, num_images=2, image_size=40)


@pytest.mark.parametrize(
    "kernel_size, effective_size, scale", [(15, 7, 1), (15, 7, 2), (5, 3, 2), (9, 3, 3)]
)
def test_integer_scale_basis_is_one_hot_dilated_taps(kernel_size, effective_size, scale):
    basis = dilated_basis(kernel_size, effective_size, scale)
    half, centre = effective_size // 2, kernel_size // 2
    taps = [(a, b) for a in range(-half, half + 1) for b in range(-half, half + 1)]
    expected = torch.zeros_like(basis)
    for f, (a, b) in enumerate(taps):
        expected[f, centre + scale * a, centre + scale * b] = 1
    torch.testing.assert_close(basis, expected, rtol=0, atol=0)


@pytest.mark.parametrize("scale", [1.26, 1.59])
def test_non_integer_scale_basis_is_a_bilinear_tap_at_the_dilated_position(scale):
    basis = dilated_basis(15, 7, scale)
    coords = torch.arange(15, dtype=torch.float64) - 7
    torch.testing.assert_close(basis.sum((-2, -1)), torch.ones(49, dtype=torch.float64))
    rows = (basis.sum(-1) * coords).sum(-1)
    cols = (basis.sum(-2) * coords).sum(-1)
    offsets = torch.arange(-3, 4, dtype=torch.float64)
    torch.testing.assert_close(rows, (scale * offsets).repeat_interleave(7))
    torch.testing.assert_close(cols, (scale * offsets).repeat(7))


def test_exact_basis_has_no_equivariance_loss_between_integer_scales():
    # shifting by 2p then halving the image equals halving then shifting by p, exactly
    proxy = torch.stack([dilated_basis(K, E, s) for s in (1, 2)], 1).float()
    images = torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(0))
    assert equivariance_loss(proxy, images, [1.0, 2.0]) < 1e-4 * images.norm()
    shifted = torch.stack([dilated_basis(K, E, 1), dilated_basis(K, E, 1)], 1).float()
    assert equivariance_loss(shifted, images, [1.0, 2.0]) > 1.0


def test_fit_lowers_the_loss_and_keeps_integer_scales_exact():
    initial = fit_proxy_basis(K, E, SCALES, DiscoFit(steps=0, num_images=2, image_size=40))
    fitted = fit_proxy_basis(K, E, SCALES, TINY)
    images = TINY.images()
    assert equivariance_loss(fitted, images, SCALES) < 0.99 * equivariance_loss(
        initial, images, SCALES
    )
    torch.testing.assert_close(fitted[:, [0, 2]], initial[:, [0, 2]], rtol=0, atol=0)
    assert not torch.equal(fitted[:, 1], initial[:, 1])


@pytest.fixture
def count_fits(monkeypatch):
    calls = []
    real_fit = disco.fit_proxy_basis

    def counting_fit(*args, **kwargs):
        calls.append(args)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(disco, "fit_proxy_basis", counting_fit)
    return calls


def test_cache_is_written_once_and_reused(tmp_path, count_fits):
    first = load_or_fit_proxy_basis(K, E, SCALES, TINY, tmp_path)
    path = tmp_path / f"{proxy_cache_key(K, E, SCALES, TINY)}.pt"
    stamp = path.stat().st_mtime_ns
    second = load_or_fit_proxy_basis(K, E, SCALES, TINY, tmp_path)
    assert len(count_fits) == 1
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    torch.testing.assert_close(second, first, rtol=0, atol=0)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a torch file", "wrong key", "wrong shape"],
)
def test_corrupted_cache_is_refitted_not_fatal(tmp_path, count_fits, content):
    key = proxy_cache_key(K, E, SCALES, TINY)
    path = tmp_path / f"{key}.pt"
    if content == "wrong key":
        torch.save({"key": "other", "basis": torch.zeros(9, 3, K, K)}, path)
    elif content == "wrong shape":
        torch.save({"key": key, "basis": torch.zeros(9, 2, K, K)}, path)
    else:
        path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match="refitting the DISCO basis"):
        basis = load_or_fit_proxy_basis(K, E, SCALES, TINY, tmp_path)
    assert len(count_fits) == 1
    assert basis.shape == (9, 3, K, K)
    reloaded = load_or_fit_proxy_basis(K, E, SCALES, TINY, tmp_path)
    assert len(count_fits) == 1
    torch.testing.assert_close(reloaded, basis, rtol=0, atol=0)


def test_second_model_loads_the_cached_basis_without_refitting(tmp_path, count_fits):
    first = mnist_disco(width=0.25, budget=1, cache_dir=tmp_path)
    second = mnist_disco(width=0.25, budget=1, cache_dir=tmp_path)
    assert len(count_fits) == 1
    assert len(list(tmp_path.glob("*.pt"))) == 1
    first_basis, second_basis = (m.blocks[0][0][1].basis for m in (first, second))
    assert first_basis.shape == (49, 4, 15, 15)
    torch.testing.assert_close(second_basis, first_basis, rtol=0, atol=0)


def test_cache_key_is_the_sha256_of_the_canonical_config():
    config = {
        "effective_size": E,
        "fit": asdict(TINY),
        "format": disco.CACHE_FORMAT,
        "kernel_size": K,
        "scales": SCALES,
    }
    expected = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    assert proxy_cache_key(K, E, SCALES, TINY) == expected
    assert proxy_cache_key(K, E, SCALES, DiscoFit(steps=4, num_images=2, image_size=40)) != expected


def test_default_cache_dir_never_writes_into_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SEFL_CACHE_DIR", raising=False)
    monkeypatch.setenv("SEFL_DATA_DIR", str(tmp_path))
    assert default_cache_dir() == Path("data", "cache", "disco")


def test_default_cache_dir_prefers_sefl_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEFL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEFL_CACHE_DIR", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache" / "disco"


@pytest.mark.parametrize("kind", ["A", "B"])
def test_mixed_basis_is_normalised_and_exactly_dilated_at_scale_two(tmp_path, kind):
    basis = disco_basis(K, E, SCALES, kind, min_scale=0.9, mult=1.5, fit=TINY, cache_dir=tmp_path)
    assert basis.shape == (9, 3, K, K)
    norms = basis[:, 0].pow(2).sum((-2, -1))
    torch.testing.assert_close(norms, torch.ones(9))
    # scale 2 holds the scale-1 function's 3 x 3 taps spread two pixels apart, nothing else
    dilated = torch.zeros(9, K, K)
    dilated[:, ::2, ::2] = basis[:, 0, 1:4, 1:4]
    torch.testing.assert_close(basis[:, 2], dilated)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fit_proxy_basis(K, E, [1.26, 1.59], TINY), "must include an integer scale"),
        (lambda: fit_proxy_basis(K, E, [1.0, 3.0], TINY), "beyond a 5x5 kernel"),
        (lambda: fit_proxy_basis(K, E, [2.0, 1.0], TINY), "strictly increasing"),
        (lambda: fit_proxy_basis(K, 2, SCALES, TINY), "effective_size must be odd"),
        (
            lambda: fit_proxy_basis(K, E, SCALES, DiscoFit(image_size=10)),
            "image_size 10 is too small",
        ),
        (lambda: disco_basis(K, E, SCALES, "C", fit=TINY, cache_dir="unused"), "kind must be"),
    ],
)
def test_bad_arguments(call, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a basis written by the "kind" case stays in tmp_path
    with pytest.raises(ValueError, match=match):
        call()


def test_default_fit_has_a_new_key_so_bases_cached_by_the_8_image_fit_are_not_reused():
    old_default = DiscoFit(steps=100, num_images=8, image_size=80, seed=0)
    assert DiscoFit().num_images == 32 and DiscoFit().images().shape == (32, 1, 80, 80)
    for k, e, scales in [(K, E, SCALES), (15, 7, [1.0, 1.26, 1.59, 2.0])]:
        assert proxy_cache_key(k, e, scales, DiscoFit()) != proxy_cache_key(
            k, e, scales, old_default
        )
