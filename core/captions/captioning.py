"""Image captioners: our trained decoder over frozen EfficientNet-Lite0 features, and BLIP.

Every captioner offers the same four steps, so the caption job treats them alike:
`preprocess` (one PIL image, runs in decode threads), `encode` (a pixel batch to features),
`generate` (features to sentences) and, when features can be cached in the store,
`feature_key`. Ours generates from the pooled 2560-d embedding the classifier already caches,
so captioning a project the classifier has seen costs only the decoder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from core.errors import ModelError
from core.models.oom import OomGuard
from core.models.registry import ImageEncoderSpec, image_spec

FORMAT_VERSION = 1
PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """Lowercased words; punctuation dropped, as in the BLEU references we score against."""
    return _WORD.findall(text.lower())


class FeatureSource(Protocol):
    name: str
    feature_key: str | None  # embedding cache key in the store; None when features are not cacheable
    embedding_key: str | None  # the classifier's embedding cache key, when `embedding` derives it
    max_side: int  # decode photos at most this large

    def preprocess(self, image: Image.Image) -> np.ndarray: ...
    def encode(self, pixels: np.ndarray) -> np.ndarray: ...
    def embedding(self, features: np.ndarray) -> np.ndarray: ...


class ImageCaptioner(FeatureSource, Protocol):
    def generate(self, features: np.ndarray) -> list[str]: ...


@dataclass
class DecoderConfig:
    feature_dim: int = 2560  # "pooled": the embedding's width; "attention": channels of each region
    embed_dim: int = 256
    hidden_dim: int = 512
    dropout: float = 0.5
    max_len: int = 20
    kind: str = "pooled"  # "pooled" (show and tell) or "attention" (show, attend and tell)
    region_dim: int = 256  # "attention": each region projected to this width (keys and values too)
    attention_heads: int = 4

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CaptionerInfo:
    """Everything needed to use the weights: vocabulary, encoder version, decoding, scores."""

    version: str
    vocabulary: list[str]  # index = token id; the first four are SPECIALS
    image_encoder: str  # registry name of the frozen encoder
    image_key: str  # its embedding cache key: features must come from exactly this
    decoder: dict[str, Any]
    beam_size: int = 3
    length_penalty: float = 0.7
    style: str | None = None  # default caption style (a training source with a style token), if any
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    weights: str = "captioner.safetensors"  # the weights file this metadata belongs to


def create_decoder(config: DecoderConfig, vocab_size: int) -> Any:
    if config.kind == "attention":
        return create_attention_decoder(config, vocab_size)
    if config.kind != "pooled":
        raise ModelError(f"unknown captioner decoder kind {config.kind!r}; update Tagline to read it")
    return create_pooled_decoder(config, vocab_size)


def create_attention_decoder(config: DecoderConfig, vocab_size: int) -> Any:
    """Spatial attention over the encoder's regions, looked up by the word's own hidden state
    (Lu et al. 2017, "Knowing when to look"): each word reads the part of the photo it needs,
    so small objects the pooled vector blurs can still be named. Attending after the LSTM keeps
    the LSTM one fused call over the whole caption: trainable on a CPU.

    Input: (B, regions, channels) feature maps. Their pooled [mean, max] (the classifier's
    embedding) sets the initial state and joins every input word, as in the pooled decoder.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    channels, hidden, heads, width = config.feature_dim, config.hidden_dim, config.attention_heads, config.region_dim

    class AttentionDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            # project the regions once, narrow: with 64 regions a photo this is most of the cost,
            # so no affine LayerNorm or dropout at full width (their backward passes cost more)
            self.norm = nn.LayerNorm(channels, elementwise_affine=False)
            self.regions = nn.Sequential(nn.Linear(channels, width), nn.ReLU(), nn.Dropout(config.dropout))
            self.keys = nn.Linear(width, width)
            self.values = nn.Linear(width, width)
            self.pooled_norm = nn.LayerNorm(2 * channels)
            self.image = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * channels, config.embed_dim), nn.ReLU())
            self.init_state = nn.Linear(config.embed_dim, 2 * hidden)
            self.embed = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
            self.lstm = nn.LSTM(2 * config.embed_dim, hidden, batch_first=True)
            self.query = nn.Linear(hidden, width)
            self.mix = nn.Linear(hidden + width, hidden)
            self.drop = nn.Dropout(config.dropout)
            self.out = nn.Linear(hidden, vocab_size)

        def start(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            maps = features.float()
            image = self.image(self.pooled_norm(torch.cat([maps.mean(dim=1), maps.amax(dim=1)], dim=1)))
            h, c = torch.tanh(self.init_state(image)).chunk(2, dim=1)
            regions = self.regions(self.norm(maps))
            # image vector, keys and values as one (B, ...) tensor: the beam search repeats and
            # carries it exactly as it carries the pooled decoder's image vector
            packed = torch.cat([self.keys(regions), self.values(regions)], dim=2)
            memory = torch.cat([image, packed.flatten(1)], dim=1)
            return memory, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous())

        def _heads(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], x.shape[1], heads, width // heads).transpose(1, 2)  # (B, heads, R|T, d)

        def step(self, memory: torch.Tensor, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            """tokens (B, T) -> logits (B, T, V): the LSTM over the words, then each word's
            hidden state attends over the regions, and both together predict the next word."""
            batch = memory.shape[0]
            image = memory[:, : config.embed_dim]
            kv = memory[:, config.embed_dim :].view(batch, -1, 2 * width)
            keys, values = self._heads(kv[:, :, :width]), self._heads(kv[:, :, width:])
            words = self.embed(tokens)
            inputs = torch.cat([words, image.unsqueeze(1).expand(-1, words.shape[1], -1)], dim=2)
            states, state = self.lstm(inputs, state)
            query = self._heads(self.query(states))
            context = functional.scaled_dot_product_attention(query, keys, values).transpose(1, 2).flatten(2)
            mixed = torch.tanh(self.mix(torch.cat([states, context], dim=2)))
            return self.out(self.drop(mixed)), state

        def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            memory, state = self.start(features)
            return self.step(memory, tokens, state)[0]

    return AttentionDecoder()


def create_pooled_decoder(config: DecoderConfig, vocab_size: int) -> Any:
    """Show-and-tell LSTM with the image injected twice: initial state and every input step."""
    import torch
    from torch import nn

    class CaptionDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.norm = nn.LayerNorm(config.feature_dim)
            self.image = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.feature_dim, config.embed_dim), nn.ReLU())
            self.init_state = nn.Linear(config.embed_dim, 2 * config.hidden_dim)
            self.embed = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
            self.lstm = nn.LSTM(2 * config.embed_dim, config.hidden_dim, batch_first=True)
            self.drop = nn.Dropout(config.dropout)
            self.out = nn.Linear(config.hidden_dim, vocab_size)

        def start(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            image = self.image(self.norm(features))
            h, c = torch.tanh(self.init_state(image)).chunk(2, dim=1)
            return image, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous())

        def step(self, image: torch.Tensor, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
            """tokens (B, T) -> logits (B, T, V); the image vector joins every input word."""
            words = self.embed(tokens)
            inputs = torch.cat([words, image.unsqueeze(1).expand(-1, words.shape[1], -1)], dim=2)
            hidden, state = self.lstm(inputs, state)
            return self.out(self.drop(hidden)), state

        def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            image, state = self.start(features)
            return self.step(image, tokens, state)[0]

    return CaptionDecoder()


def _device(decoder: Any) -> Any:
    return next(decoder.parameters()).device


def style_token(name: str) -> str:
    """The first input word that asks for captions in the style of one training source."""
    return f"<style:{name}>"


def start_id(vocabulary: Sequence[str], style: str | None) -> int:
    """The first input word: the style's token when the captioner has it, else `<start>`."""
    token = style_token(style) if style else None
    return vocabulary.index(token) if token in vocabulary else SPECIALS.index(START)


def detokenize(vocabulary: Sequence[str], ids: Sequence[int]) -> str:
    """Token ids to a sentence, without special or style tokens."""
    return " ".join(vocabulary[i] for i in ids if i >= len(SPECIALS) and not vocabulary[i].startswith("<style:"))


def greedy_decode(decoder: Any, features: np.ndarray, max_len: int, start: int = SPECIALS.index(START)) -> list[list[int]]:
    import torch

    device = _device(decoder)
    with torch.inference_mode():
        image, state = decoder.start(torch.from_numpy(np.asarray(features, np.float32)).to(device))
        tokens = torch.full((len(features), 1), start, dtype=torch.long, device=device)
        history = torch.zeros(len(features), 0, dtype=torch.long, device=device)
        for _ in range(max_len):
            logits, state = decoder.step(image, tokens, state)
            logp = logits[:, -1]
            _forbid(logp, history)
            tokens = logp.argmax(dim=1, keepdim=True)
            history = torch.cat([history, tokens], dim=1)
        return _trim(history.tolist())


def beam_decode(decoder: Any, features: np.ndarray, beam: int, max_len: int, length_penalty: float,
                start: int = SPECIALS.index(START)) -> list[list[int]]:
    """Batched beam search: B images x K beams run as one LSTM batch per step."""
    import torch

    end = SPECIALS.index(END)
    device = _device(decoder)
    with torch.inference_mode():
        batch = len(features)
        image, (h, c) = decoder.start(torch.from_numpy(np.asarray(features, np.float32)).to(device))
        image = image.repeat_interleave(beam, 0)
        state = (h.repeat_interleave(beam, 1), c.repeat_interleave(beam, 1))
        tokens = torch.full((batch * beam, 1), start, dtype=torch.long, device=device)
        scores = torch.zeros(batch, beam, device=device)
        scores[:, 1:] = -1e9  # all beams start identical: keep only one alive at first
        history = torch.zeros(batch * beam, 0, dtype=torch.long, device=device)
        finished = torch.zeros(batch * beam, dtype=torch.bool, device=device)
        lengths = torch.zeros(batch * beam, device=device)
        offsets = torch.arange(batch, device=device) * beam
        for _ in range(max_len):
            logits, state = decoder.step(image, tokens, state)
            logp = torch.log_softmax(logits[:, -1], dim=1)
            _forbid(logp, history)
            logp[finished] = -1e9
            logp[finished, end] = 0.0  # a finished beam stays as it is at no cost
            vocab = logp.shape[1]
            total = (scores.view(-1, 1) + logp).view(batch, beam * vocab)
            scores, flat = total.topk(beam, dim=1)
            origin = (flat // vocab + offsets.unsqueeze(1)).view(-1)
            tokens = (flat % vocab).view(-1, 1)
            history = torch.cat([history[origin], tokens], dim=1)
            lengths = lengths[origin] + (~finished[origin]).float()
            finished = finished[origin] | (tokens.view(-1) == end)
            state = (state[0][:, origin], state[1][:, origin])
            if bool(finished.all()):
                break
        normalised = scores.view(-1) / lengths.clamp(min=1) ** length_penalty
        best = normalised.view(batch, beam).argmax(dim=1) + offsets
        return _trim(history[best].tolist())


_NEVER = [SPECIALS.index(t) for t in (PAD, START, UNK)]


def _forbid(logp: Any, history: Any) -> None:
    """Words a caption may not contain: padding, start, unknown (a sentence with a hole in
    it), and any word that would repeat a trigram."""
    logp[:, _NEVER] = -1e9
    _block_repeated_trigrams(logp, history)


def _block_repeated_trigrams(logp: Any, history: Any) -> None:
    """Forbid a word that would repeat a trigram already in the beam: small LSTMs loop otherwise."""
    if history.shape[1] < 3:
        return
    seen = (history[:, :-2] == history[:, -2:-1]) & (history[:, 1:-1] == history[:, -1:])
    rows, cols = seen.nonzero(as_tuple=True)
    logp[rows, history[:, 2:][rows, cols]] = -1e9


def _trim(rows: list[list[int]]) -> list[list[int]]:
    end = SPECIALS.index(END)
    return [row[: row.index(end)] if end in row else row for row in rows]


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def default_captioner_dir() -> Path:
    """The captioner shipped with Tagline: `models/captioner` beside the packages, read-only."""
    import core

    return Path(str(resources.files(core))).parent / "models" / "captioner"


class FrozenImageFeatures:
    """The frozen encoder side: photo -> pooled embedding, the same vectors the store caches;
    with `regions`, photo -> (64, 1280) regions of the feature map, for attention. Regions are
    too large for the store (320 KB a photo), but their pooled [mean, max] is the classifier's
    embedding, so the caption job caches that and classify need not encode the photo again."""

    def __init__(self, spec: ImageEncoderSpec, prefer_gpu: bool = True, regions: bool = False) -> None:
        from core.models.encoders import region_key

        self.spec = spec
        self.prefer_gpu = prefer_gpu
        self.regions = regions
        self.name = spec.name
        self.feature_key: str | None = None if regions else spec.key
        self.embedding_key: str | None = spec.key if regions else None
        self.key = region_key(spec) if regions else spec.key
        self.max_side = 2 * spec.input_size

    @cached_property
    def image_encoder(self) -> Any:
        """On the runtime classify uses (OpenVINO where it is faster), always in f32: these
        features are cached under the f32 key and the captioner was trained on them."""
        from core.models.encoders import ImageEncoder, gpu_in_use
        from core.models.runtimes import choose_runtime, full_precision

        runtime = full_precision(choose_runtime(None, gpu=gpu_in_use(self.prefer_gpu)))
        return ImageEncoder(self.spec, self.prefer_gpu, regions=self.regions, runtime=runtime)

    def embedding(self, features: np.ndarray) -> np.ndarray:
        """The pooled embedding of region features: [mean, max] over the regions."""
        if not self.regions:
            return features
        return np.concatenate([features.mean(axis=1), features.max(axis=1)], axis=1).astype(np.float32)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        from core.models.encoders import preprocess_image

        return preprocess_image(image, self.spec)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return np.asarray(self.image_encoder.encode(pixels), np.float32)


class Captioner(FrozenImageFeatures):
    """Our shipped captioner: frozen Lite0 features (regions or pooled) -> LSTM decoder -> sentence."""

    def __init__(self, folder: Path | str | None = None, prefer_gpu: bool = True, beam_size: int | None = None,
                 style: str | None = None) -> None:
        """`style`: write like this training source (see `styles`); default: the model's own."""
        from core.models.torch_encoders import load_state_dict

        self.folder = Path(folder) if folder is not None else default_captioner_dir()
        self.info = read_captioner_info(self.folder)
        spec = image_spec(self.info.image_encoder)
        self.config = DecoderConfig(**self.info.decoder)
        super().__init__(spec, prefer_gpu, regions=self.config.kind == "attention")
        if self.key != self.info.image_key:
            raise ModelError(f"captioner {self.folder} needs encoder {self.info.image_key}, this install has {self.key}")
        self.decoder = create_decoder(self.config, len(self.info.vocabulary))
        self.decoder.load_state_dict(load_state_dict(captioner_weights(self.folder, self.info)))
        self.decoder.eval()
        if prefer_gpu and _torch_cuda():
            self.decoder.to("cuda")
        self.guard = OomGuard(self._decoder_to_cpu)
        self.beam_size = beam_size if beam_size is not None else self.info.beam_size
        self.style = style if style is not None else self.info.style
        if self.style is not None and style_token(self.style) not in self.info.vocabulary:
            known = ", ".join(self.styles) or "none: this captioner has one style"
            raise ModelError(f"captioner {self.info.version} has no style {self.style!r} (styles: {known})")
        self.start = start_id(self.info.vocabulary, self.style)
        self.name = f"tagline-captioner {self.info.version}" + (f" ({self.style} style)" if self.style else "")

    @property
    def styles(self) -> list[str]:
        prefix = style_token("")[:-1]
        return [w[len(prefix) : -1] for w in self.info.vocabulary if w.startswith(prefix)]

    def _decoder_to_cpu(self) -> bool:
        if _device(self.decoder).type == "cpu":
            return False
        self.decoder.to("cpu")
        return True

    def generate(self, features: np.ndarray, beam_size: int | None = None) -> list[str]:
        """Sentences for a batch of features: on the GPU when torch has one (split into smaller
        batches, then moved to the CPU, if it runs out of memory)."""
        beam = self.beam_size if beam_size is None else beam_size
        if len(features) == 0:
            return []
        return [str(text) for text in self.guard(lambda rows: self._generate(rows, beam), features)]

    def _generate(self, features: np.ndarray, beam: int) -> np.ndarray:
        """On all of torch's threads: the decoder had been held to one ("a small LSTM gains
        nothing from threads"), but the caption job runs it between the encoder's batches, not
        beside them, and two threads captioned 500 photos 1.4x as fast (docs/benchmarks.md)."""
        if beam <= 1:
            ids = greedy_decode(self.decoder, features, self.config.max_len, self.start)
        else:
            ids = beam_decode(self.decoder, features, beam, self.config.max_len, self.info.length_penalty, self.start)
        return np.asarray([self.detokenize(row) for row in ids], dtype=object)

    def detokenize(self, ids: Sequence[int]) -> str:
        return detokenize(self.info.vocabulary, ids)

    def caption_images(self, images: Sequence[Image.Image]) -> list[str]:
        if not images:
            return []
        return self.generate(self.encode(np.stack([self.preprocess(im) for im in images])))


def save_captioner(folder: Path, info: CaptionerInfo, tensors: dict[str, Any]) -> None:
    """Weights under a name of their own, then `captioner.json` switched to them (the single
    commit point, as for classifiers): a crash leaves the old pair or the new pair."""
    from core.models.model_files import save_weights_and_metadata

    info.weights = f"captioner-{info.version}.safetensors"
    meta = json.dumps({"format": FORMAT_VERSION, **info.__dict__}, indent=1)
    save_weights_and_metadata(Path(folder), "captioner", info.weights, tensors, meta)


def read_captioner_info(folder: Path) -> CaptionerInfo:
    meta_path = Path(folder) / "captioner.json"
    if not meta_path.is_file():
        raise ModelError(f"{folder} is not a captioner folder (needs captioner.json and its weights)")
    from core.models.model_files import read_json_document

    meta = read_json_document(meta_path, ModelError)
    if meta.pop("format", None) != FORMAT_VERSION:
        raise ModelError(f"{meta_path} has an unknown format; update Tagline to read it")
    try:
        info = CaptionerInfo(**meta)
    except TypeError as exc:
        raise ModelError(f"{meta_path} is incomplete: {exc}") from exc
    if not isinstance(info.weights, str):
        raise ModelError(f"{meta_path}: weights must be a file name, not {info.weights!r}")
    if not (Path(folder) / Path(info.weights).name).is_file():
        raise ModelError(f"{folder} is not a captioner folder: {info.weights} is missing")
    return info


def captioner_weights(folder: Path, info: CaptionerInfo) -> Path:
    return Path(folder) / Path(info.weights).name


class BlipCaptioner:
    """A Hugging Face BLIP captioner from a local folder (or a hub name when online).

    transformers is imported only here, so installs without it still caption with ours.
    """

    feature_key: str | None = None
    embedding_key: str | None = None

    def __init__(self, source: str | Path, local_only: bool = True, max_new_tokens: int = 30, num_beams: int = 3) -> None:
        try:
            from transformers import BlipForConditionalGeneration, BlipProcessor
        except ImportError as exc:
            raise ModelError("BLIP captioners need transformers: pip install transformers") from exc
        try:
            self.processor = BlipProcessor.from_pretrained(str(source), local_files_only=local_only)
            self.model = BlipForConditionalGeneration.from_pretrained(str(source), local_files_only=local_only).eval()
        except OSError as exc:
            raise ModelError(f"cannot load a BLIP captioner from {source}: {exc}") from exc
        self.name = f"blip {Path(str(source)).name}"
        self.max_side = 2 * int(self.model.config.vision_config.image_size)
        self.max_new_tokens, self.num_beams = max_new_tokens, num_beams

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return np.asarray(self.processor(images=image, return_tensors="np")["pixel_values"][0], np.float32)

    def encode(self, pixels: np.ndarray) -> np.ndarray:
        return pixels  # BLIP's vision tower runs inside generate()

    def embedding(self, features: np.ndarray) -> np.ndarray:
        raise NotImplementedError("BLIP features are pixels, not the classifier's embedding")

    def generate(self, features: np.ndarray) -> list[str]:
        import torch

        with torch.inference_mode():
            out = self.model.generate(pixel_values=torch.from_numpy(features), max_new_tokens=self.max_new_tokens,
                                      num_beams=self.num_beams)
        return [text.strip() for text in self.processor.batch_decode(out, skip_special_tokens=True)]


def load_captioner(source: str | Path | None = None, prefer_gpu: bool = True,
                   style: str | None = None) -> Captioner | BlipCaptioner:
    """Our captioner folder (captioner.json), else a Hugging Face BLIP folder or hub name."""
    if source is None or (Path(source) / "captioner.json").is_file():
        return Captioner(source, prefer_gpu, style=style)
    if style is not None:
        raise ModelError("--style applies to Tagline's own captioners, not to BLIP")
    return BlipCaptioner(source, local_only=Path(source).exists())
