"""The fused classifier head over cached image and caption embeddings (torch).

Each side is projected on its own, then concatenated with a has-caption flag. Captions are
dropped at random while training so the same model labels photos that have no caption.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class HeadConfig:
    image_dim: int
    text_dim: int
    num_labels: int
    hidden: int = 384
    dropout: float = 0.5
    caption_dropout: float = 0.1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def create_head(config: HeadConfig) -> Any:
    import torch
    from torch import nn

    class FusionHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.register_buffer("image_mean", torch.zeros(config.image_dim))
            self.register_buffer("image_std", torch.ones(config.image_dim))
            self.image_proj = nn.Sequential(nn.Dropout(0.2), nn.Linear(config.image_dim, config.hidden), nn.GELU())
            self.text_proj = nn.Sequential(nn.Dropout(0.1), nn.Linear(config.text_dim, config.hidden), nn.GELU())
            self.classifier = nn.Sequential(
                nn.Dropout(config.dropout),
                nn.Linear(2 * config.hidden + 1, config.hidden),
                nn.GELU(),
                nn.Dropout(config.dropout / 2),
                nn.Linear(config.hidden, config.num_labels),
            )

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor) -> torch.Tensor:
            flag = has_caption.unsqueeze(1)
            if self.training and config.caption_dropout > 0:
                keep = (torch.rand_like(flag) >= config.caption_dropout).to(flag.dtype)
                flag = flag * keep
            image = (image - self.get_buffer("image_mean")) / self.get_buffer("image_std")
            fused = torch.cat([self.image_proj(image), self.text_proj(text) * flag, flag], dim=1)
            return self.classifier(fused)

    return FusionHead()
