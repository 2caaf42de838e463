"""The fused classifier head over cached image and caption embeddings (torch).

Each side is projected on its own, then concatenated with a has-caption flag. Captions are
dropped at random while training so the same model labels photos that have no caption.
The caption side may end with a binary bag of caption words; its weights are a table of one
row per word, so training looks up the ~20 words of a caption instead of multiplying 4,000
mostly-zero columns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

HEAD_KINDS = ("mlp", "linear", "refined")


@dataclass(frozen=True)
class HeadConfig:
    image_dim: int
    text_dim: int  # caption side: sentence embedding, then `words_dim` caption-word columns
    num_labels: int
    hidden: int = 384
    dropout: float = 0.5
    caption_dropout: float = 0.1
    words_dim: int = 0  # 0: the caption side is one dense input (models made before the table)
    # The defaults below describe models made before 2026-12-01, so their model.json loads as it was.
    image_dropout: float = 0.2
    text_dropout: float = 0.1
    second_dropout: float | None = None  # dropout before the last layer; None: half of `dropout`
    standardise_text: bool = False  # standardise the sentence embedding as the image side is
    kind: str = "mlp"  # or "linear": one layer over the standardised inputs (the rung for few labels)
    name_prior: bool = False  # linear: add how close each caption is to each label's name (one learnt scale)
    mention_dim: int = 0  # columns after the sentence embedding, one per label: 1 where the caption names it
    prior_dim: int = 0  # linear: the aligned space's size when each label's zero-shot score is an input (label_prior)
    # refined (core.learn.refine): a model the project already had, kept inside this one, its logits corrected
    # per label, and heads of their own for the labels after its own: members as {"head": config, "weight": w}
    base: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    residual: bool = False  # refined: a linear correction over the standardised inputs besides the per-label one

    def sentence_dim(self) -> int:
        """The caption side's standardised columns: the sentence embedding alone."""
        return self.text_dim - self.words_dim - self.mention_dim

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dropout_mask(like: Any, p: float) -> Any:
    """An inverted-dropout mask from 8-bit random integers (kept entries scaled up): the same
    regulariser as `nn.Dropout`, about twice as fast on a CPU, where drawing masks was a quarter of
    an epoch. Both the fused head and the batched trainer (core.learn.batched) draw it."""
    import torch

    cut = round(p * 256)
    keep = torch.randint(0, 256, like.shape, dtype=torch.uint8) >= cut
    return keep.to(like.dtype) * (256 / (256 - cut))


def create_head(config: HeadConfig) -> Any:
    if config.kind == "linear":
        return create_linear_head(config)
    if config.kind == "refined":
        from core.learn.refine import create_refined_head

        return create_refined_head(config)
    if config.kind != "mlp":
        raise ValueError(f"unknown head kind {config.kind!r}; use one of {', '.join(HEAD_KINDS)}")
    import torch
    from torch import nn

    class Dropout(nn.Module):
        """Inverted dropout with 8-bit masks (`dropout_mask`)."""

        def __init__(self, p: float) -> None:
            super().__init__()
            self.p = p
            self.cut = round(p * 256)

        def mask(self, like: torch.Tensor) -> torch.Tensor:
            return dropout_mask(like, self.p)  # type: ignore[no-any-return]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.mask(x) if self.training and self.cut else x

    class FusionHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            dense_dim = config.text_dim - config.words_dim  # the caption columns read densely (mentions too)
            self.register_buffer("image_mean", torch.zeros(config.image_dim))
            self.register_buffer("image_std", torch.ones(config.image_dim))
            if config.standardise_text:  # the sentence embedding only: name mentions stay 0 / 1
                self.register_buffer("text_mean", torch.zeros(config.sentence_dim()))
                self.register_buffer("text_std", torch.ones(config.sentence_dim()))
            self.image_proj = nn.Sequential(Dropout(config.image_dropout), nn.Linear(config.image_dim, config.hidden), nn.GELU())
            self.text_proj = nn.Sequential(Dropout(config.text_dropout), nn.Linear(dense_dim, config.hidden), nn.GELU())
            if config.words_dim:
                bound = config.text_dim**-0.5  # as if the words were columns of text_proj's Linear
                self.words = nn.Parameter(torch.empty(config.words_dim, config.hidden).uniform_(-bound, bound))
                with torch.no_grad():
                    self.text_proj[1].weight.uniform_(-bound, bound)  # type: ignore[operator]
            self.classifier = nn.Sequential(
                Dropout(config.dropout),
                nn.Linear(2 * config.hidden + 1, config.hidden),
                nn.GELU(),
                Dropout(config.dropout / 2 if config.second_dropout is None else config.second_dropout),
                nn.Linear(config.hidden, config.num_labels),
            )

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor,
                    words: torch.Tensor | None = None) -> torch.Tensor:
            """`words`, when given, holds the caption-word columns as indices (one row of word
            ids per caption, padded with -1) and `text` only the sentence embedding."""
            flag = has_caption.unsqueeze(1)
            if self.training and config.caption_dropout > 0:
                keep = (torch.rand_like(flag) >= config.caption_dropout).to(flag.dtype)
                flag = flag * keep
            image = (image - self.get_buffer("image_mean")) / self.get_buffer("image_std")
            fused = torch.cat([self.image_proj(image), self._text(text, words) * flag, flag], dim=1)
            return self.classifier(fused)

        def _text(self, text: torch.Tensor, words: torch.Tensor | None) -> torch.Tensor:
            if config.standardise_text:
                text = self._standardised(text)
            if not config.words_dim:
                return self.text_proj(text)
            dropout, linear, activation = self.text_proj
            table: torch.Tensor = self.words
            if words is None:  # a dense bag after the sentence embedding (prediction)
                dense_dim = config.text_dim - config.words_dim
                bag = dropout(text[:, dense_dim:]) @ table
                return activation(linear(dropout(text[:, :dense_dim])) + bag)
            weights = (words >= 0).to(text.dtype)
            if self.training and dropout.cut:  # dropout on the bag drops words
                weights = weights * dropout.mask(weights)  # type: ignore[operator]
            bag = torch.nn.functional.embedding_bag(words.clamp(min=0), table, mode="sum", per_sample_weights=weights)
            return activation(linear(dropout(text)) + bag)

        def _standardised(self, text: torch.Tensor) -> torch.Tensor:
            """The sentence columns standardised (a missing caption stays zero: the flag hides it)."""
            sentence_dim = self.get_buffer("text_mean").shape[0]
            sentence = (text[:, :sentence_dim] - self.get_buffer("text_mean")) / self.get_buffer("text_std")
            return torch.cat([sentence, text[:, sentence_dim:]], dim=1) if text.shape[1] > sentence_dim else sentence

    return FusionHead()


def create_linear_head(config: HeadConfig) -> Any:
    """A logistic regression over [standardised photo, standardised caption x flag, flag]: the
    same inputs and call as the fused head, so every caller (training, Classifier) treats both
    alike. Its weights are fitted by L-BFGS (`core.learn.ladder`), not by the epoch loop.

    With `name_prior`, each label's logit also gets `name_scale` times the cosine between the
    caption's sentence embedding and the embedding of the label's name (`label_text`, set when
    trained). One scale shared by every label: a label seen on two photos still gains from a
    caption that names it, which its own weights cannot learn from so few. With `mention_dim`, a
    second shared scale weighs whether the caption says the label's name outright (the columns
    after the sentence embedding; a named label is nearly always there, docs/benchmarks.md). With
    `prior_dim`, a third shared scale weighs how well the photo matches the label's prompts in the
    image-text alignment, standardised per label (`core.learn.label_prior`): the photo alone, so
    it helps photos without captions most."""
    import torch
    from torch import nn

    class LinearHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.register_buffer("image_mean", torch.zeros(config.image_dim))
            self.register_buffer("image_std", torch.ones(config.image_dim))
            self.register_buffer("text_mean", torch.zeros(config.text_dim))
            self.register_buffer("text_std", torch.ones(config.text_dim))
            self.linear = nn.Linear(config.image_dim + config.text_dim + 1, config.num_labels)
            if config.name_prior:
                self.register_buffer("label_text", torch.zeros(config.num_labels, config.sentence_dim()))
                self.name_scale = nn.Parameter(torch.zeros(()))
            if config.mention_dim:
                self.mention_scale = nn.Parameter(torch.zeros(()))
            if config.prior_dim:
                self.register_buffer("align_weight", torch.zeros(config.image_dim, config.prior_dim))
                self.register_buffer("align_bias", torch.zeros(config.prior_dim))
                self.register_buffer("label_prompts", torch.zeros(config.num_labels, config.prior_dim))
                self.register_buffer("prior_mean", torch.zeros(config.num_labels))
                self.register_buffer("prior_std", torch.ones(config.num_labels))
                self.prior_scale = nn.Parameter(torch.zeros(()))

        def features(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor) -> torch.Tensor:
            flag = has_caption.unsqueeze(1)
            image = (image - self.get_buffer("image_mean")) / self.get_buffer("image_std")
            text = (text - self.get_buffer("text_mean")) / self.get_buffer("text_std") * flag
            return torch.cat([image, text, flag], dim=1)

        def name_closeness(self, text: torch.Tensor, has_caption: torch.Tensor) -> torch.Tensor:
            """(photos, labels) cosine of caption and label name; 0 without a caption."""
            names = self.get_buffer("label_text")
            return (text[:, : names.shape[1]] @ names.T) * has_caption.unsqueeze(1)

        def mentions(self, text: torch.Tensor, has_caption: torch.Tensor) -> torch.Tensor:
            """(photos, labels) 1 where the caption names the label (`core.learn.caption_words.name_mentions`)."""
            start = config.sentence_dim()
            return text[:, start : start + config.mention_dim] * has_caption.unsqueeze(1)

        def zero_shot(self, image: torch.Tensor) -> torch.Tensor:
            """(photos, labels) the photo's closeness to each label's prompts, standardised per label."""
            projected = torch.nn.functional.normalize(image @ self.get_buffer("align_weight") + self.get_buffer("align_bias"), dim=1)
            closeness = projected @ self.get_buffer("label_prompts").T
            return (closeness - self.get_buffer("prior_mean")) / self.get_buffer("prior_std")

        def forward(self, image: torch.Tensor, text: torch.Tensor, has_caption: torch.Tensor,
                    words: torch.Tensor | None = None) -> torch.Tensor:
            logits = self.linear(self.features(image, text, has_caption))
            if config.prior_dim:
                logits = logits + self.prior_scale * self.zero_shot(image)
            if config.name_prior:
                logits = logits + self.name_scale * self.name_closeness(text, has_caption)
            if config.mention_dim:
                logits = logits + self.mention_scale * self.mentions(text, has_caption)
            return logits

    return LinearHead()
