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

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor,
                    words: torch.Tensor | None = None) -> torch.Tensor:
            """`words`, when given, holds the caption-word columns of `text` as indices (one row
            of term ids per caption, padded with -1) and `text` only the columns before them."""
            flag = has_caption.unsqueeze(1)
            if self.training and config.caption_dropout > 0:
                keep = (torch.rand_like(flag) >= config.caption_dropout).to(flag.dtype)
                flag = flag * keep
            image = (image - self.get_buffer("image_mean")) / self.get_buffer("image_std")
            text_out = self.text_proj(text) if words is None else self._sparse_text(text, words)
            fused = torch.cat([self.image_proj(image), text_out * flag, flag], dim=1)
            return self.classifier(fused)

        def _sparse_text(self, text: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
            """The same function as `text_proj` over [text, bag of words], computed from the
            words' indices: a binary bag of ~20 terms in 4,000 costs a lookup, not a matmul
            (training is several times faster on a CPU). Dropout on the bag drops terms."""
            dropout, linear, activation = self.text_proj
            p = float(dropout.p)  # type: ignore[arg-type]
            weight: torch.Tensor = linear.weight  # type: ignore[assignment]
            bias: torch.Tensor = linear.bias  # type: ignore[assignment]
            dense_dim = text.shape[1]
            weights = (words >= 0).to(text.dtype)
            if self.training and p > 0:
                weights = weights * (torch.rand_like(weights) >= p) / (1 - p)
            bag = torch.nn.functional.embedding_bag(words.clamp(min=0), weight[:, dense_dim:].t(), mode="sum",
                                                    per_sample_weights=weights)
            return activation(torch.nn.functional.linear(dropout(text), weight[:, :dense_dim], bias) + bag)

    return FusionHead()
