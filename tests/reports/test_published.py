"""The published numbers shipped with the package and the published -> zoo name map."""

from __future__ import annotations

import math

import pytest

from reports.published import (
    published_model,
    published_model_map,
    published_results,
    published_value,
)


def test_every_published_model_maps_to_the_zoo() -> None:
    mapping = published_model_map()
    results = published_results()
    mapped = set(zip(mapping["table"], mapping["published_model"]))
    assert set(zip(results["table"], results["model"])) == mapped
    assert not mapping.duplicated(["table", "model"]).any()


@pytest.mark.parametrize(
    ("table", "model", "published"),
    [
        ("mnist_scale", "sesn_scalar", "sesn"),
        ("mnist_scale", "sesn_vector", "sesn"),
        ("mnist_scale", "dss_vector", "dss"),
        ("stl10_scale", "sesn_wrn_c", "sesn"),
        ("stl10_scale", "fourier_cnn_stl", "fourier_cnn"),
        ("data_efficiency", "sefl", "sefl"),
        ("mnist_scale", "sicnn", None),
        ("mnist1d_scale", "sefl", None),
    ],
)
def test_published_model(table: str, model: str, published: str | None) -> None:
    assert published_model(table, model) == published


@pytest.mark.parametrize(
    ("table", "setting", "model", "column", "value"),
    [
        ("mnist_scale", "ideal", "sefl", "accuracy", 0.9889),
        ("mnist_scale", "ideal", "disco", "equivariance_error", 0.44),
        ("data_efficiency", "n_train=2500", "dss", "accuracy", 0.9401),
        ("stl10_scale", "ideal", "wrn_16_8", "scale_consistency", 0.2916),
    ],
)
def test_published_value(table: str, setting: str, model: str, column: str,
                         value: float) -> None:
    assert published_value(table, setting, model, column) == value


def test_not_reported_is_nan_and_bad_column_is_named() -> None:
    assert math.isnan(published_value("mnist_scale", "ideal", "cnn", "equivariance_error"))
    with pytest.raises(ValueError, match="column 'loss' is not published"):
        published_value("mnist_scale", "ideal", "cnn", "loss")
