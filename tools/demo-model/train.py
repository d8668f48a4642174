#!/usr/bin/env python3
"""Train clip's demo model: a small CLIP (OpenAI architecture and state-dict names) on
procedurally rendered shapes, so the quick start shows real zero-shot results.

Everything is made here: the images (drawn with PIL), the captions (templates), the BPE
vocabulary (learned from the captions, written in CLIP's merges format), the model (OpenAI's
model.py, reproduced) and the held-out evaluation set with PyTorch's zero-shot predictions
that the C++ end-to-end test compares against.

    python3 tools/demo-model/train.py --out /tmp/demo-model --eval-dir tests/data/demo \
        --examples-dir examples/images

Needs torch (1.13 tested), numpy, PIL and the `regex` module; nothing else, no network.
This script is never needed to build, test or use the library. See tools/demo-model/README.md.
"""

import argparse
import collections
import hashlib
import html
import json
import math
import os
import random
import struct
import sys
import time

import numpy as np
import regex as re
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

# ---------------------------------------------------------------------------------------------
# Configuration

IMAGE_SIZE = 64  # model input resolution
PATCH_SIZE = 16
VISION_WIDTH = 128  # heads = width // 64, as OpenAI's build_model infers
VISION_LAYERS = 3
TEXT_WIDTH = 128
TEXT_LAYERS = 3
EMBED_DIM = 64
CONTEXT_LENGTH = 16  # the longest caption is 16 tokens with SOT and EOT

# CLIP's normalisation constants (OpenAI clip/clip.py _transform).
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 225),
    "yellow": (245, 220, 30),
    "purple": (135, 45, 185),
    "orange": (250, 140, 20),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
# Backgrounds with a name appear in captions; the others are left unnamed.
NAMED_BACKGROUNDS = {"white": (250, 250, 250), "black": (10, 10, 10), "gray": (128, 128, 128)}

LABELS = [f"{c} {s}" for c in COLOURS for s in SHAPES]
TEMPLATES = ["a photo of a {}."]

# ---------------------------------------------------------------------------------------------
# OpenAI's SimpleTokenizer (clip/simple_tokenizer.py), reading a merges text instead of the
# shipped gz file. ftfy is not applied (the C++ tokenizer does not either).


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    pairs = set()
    prev = word[0]
    for char in word[1:]:
        pairs.add((prev, char))
        prev = char
    return pairs


def basic_clean(text):
    return html.unescape(html.unescape(text)).strip()


def whitespace_clean(text):
    return re.sub(r"\s+", " ", text).strip()


PAT = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                 re.IGNORECASE)


class SimpleTokenizer:
    def __init__(self, merges_text):
        self.byte_encoder = bytes_to_unicode()
        merges = merges_text.split("\n")[1:]  # first line is the "#version" header
        merges = [tuple(m.split()) for m in merges]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for merge in merges:
            vocab.append("".join(merge))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]
        self.vocab_size = len(vocab)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(PAT, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return bpe_tokens

    def tokenize(self, texts, context_length):
        """clip.tokenize: SOT + ids + EOT, zero padded; refuses texts that do not fit."""
        result = torch.zeros(len(texts), context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            tokens = [self.sot] + self.encode(text) + [self.eot]
            if len(tokens) > context_length:
                raise RuntimeError(f"{text!r} needs {len(tokens)} tokens, context is {context_length}")
            result[i, :len(tokens)] = torch.tensor(tokens)
        return result


def learn_bpe(texts, num_merges):
    """Byte-level BPE on the words of `texts`, pre-tokenised exactly as SimpleTokenizer does,
    with the last symbol of each word carrying "</w>". Ties go to the smallest pair, so the
    result depends only on the texts."""
    byte_encoder = bytes_to_unicode()
    word_counts = collections.Counter()
    for text in texts:
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(PAT, text):
            word_counts["".join(byte_encoder[b] for b in token.encode("utf-8"))] += 1
    words = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in word_counts}
    merges = []
    for _ in range(num_merges):
        pair_counts = collections.Counter()
        for w, symbols in words.items():
            for pair in zip(symbols[:-1], symbols[1:]):
                pair_counts[pair] += word_counts[w]
        if not pair_counts:
            break
        best = min(pair_counts, key=lambda p: (-pair_counts[p], p))
        merges.append(best)
        first, second = best
        for w, symbols in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and symbols[i] == first and symbols[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            words[w] = tuple(out)
    # No trailing newline: OpenAI's loader splits on "\n" and would read an empty last merge.
    return "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges)


# ---------------------------------------------------------------------------------------------
# OpenAI's CLIP (clip/model.py), ViT variant, float32 only.


class LayerNorm(nn.LayerNorm):
    pass  # OpenAI's subclass only casts fp16 to fp32; eps stays the default 1e-5


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model, n_head, attn_mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(collections.OrderedDict([
            ("c_fc", nn.Linear(d_model, d_model * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(d_model * 4, d_model)),
        ]))
        self.ln_2 = LayerNorm(d_model)
        self.attn_mask = attn_mask

    def attention(self, x):
        mask = self.attn_mask.to(dtype=x.dtype, device=x.device) if self.attn_mask is not None else None
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x):
        x = x + self.attention(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


class Transformer(nn.Module):
    def __init__(self, width, layers, heads, attn_mask=None):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, attn_mask) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)  # [*, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [*, grid ** 2, width]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
                 context_length, vocab_size, transformer_width, transformer_heads, transformer_layers):
        super().__init__()
        self.context_length = context_length
        self.visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                        vision_width // 64, embed_dim)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads,
                                       attn_mask=self.build_attention_mask())
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(self.context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self):
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = (self.transformer.width ** -0.5) * ((2 * self.transformer.layers) ** -0.5)
        attn_std = self.transformer.width ** -0.5
        fc_std = (2 * self.transformer.width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    def build_attention_mask(self):
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)  # zero on and below the diagonal
        return mask

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text)  # [batch, n_ctx, d_model]
        x = x + self.positional_embedding
        x = x.permute(1, 0, 2)  # NLD -> LND
        x = self.transformer(x)
        x = x.permute(1, 0, 2)
        x = self.ln_final(x)
        # the feature at the EOT token, the highest id in each sequence
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        image_features = self.encode_image(image)
        text_features = self.encode_text(text)
        image_features = image_features / image_features.norm(dim=1, keepdim=True)
        text_features = text_features / text_features.norm(dim=1, keepdim=True)
        logit_scale = self.logit_scale.exp()
        logits_per_image = logit_scale * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


# ---------------------------------------------------------------------------------------------
# Scenes


def jitter(rgb, rng, amount=18):
    return tuple(int(min(255, max(0, c + rng.randint(-amount, amount)))) for c in rgb)


def shape_polygon(shape, cx, cy, r, angle):
    """Outline points of `shape` centred at (cx, cy) with circumradius r (circle: None)."""
    if shape == "circle":
        return None
    if shape == "square":
        pts = [(math.cos(angle + math.pi / 4 + k * math.pi / 2) * r, math.sin(angle + math.pi / 4 + k * math.pi / 2) * r)
               for k in range(4)]
    elif shape == "triangle":
        pts = [(math.cos(angle - math.pi / 2 + k * 2 * math.pi / 3) * r, math.sin(angle - math.pi / 2 + k * 2 * math.pi / 3) * r)
               for k in range(3)]
    elif shape == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.42
            a = angle - math.pi / 2 + k * math.pi / 5
            pts.append((math.cos(a) * rr, math.sin(a) * rr))
    elif shape == "cross":
        t = 0.34  # half arm thickness relative to r
        base = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1), (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)]
        c, s = math.cos(angle), math.sin(angle)
        pts = [((x * c - y * s) * r, (x * s + y * c) * r) for x, y in base]
    else:
        raise ValueError(shape)
    return [(cx + x, cy + y) for x, y in pts]


def draw_shape(draw, shape, colour, cx, cy, r, angle):
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        if shape == "square":
            r = r * 0.9  # circumradius -> comparable area with a circle
        draw.polygon(shape_polygon(shape, cx, cy, r, angle), fill=colour)


def make_background(width, height, rng, nprng):
    """Returns (PIL image, background name or None, mean colour). Plain backgrounds only, so
    the shape's outline is what the vision tower has to look at."""
    if rng.random() < 0.6:
        name = rng.choice(list(NAMED_BACKGROUNDS))
        base = jitter(NAMED_BACKGROUNDS[name], rng, 8)
        return Image.new("RGB", (width, height), base), name, base
    # pale or dark unnamed tint
    if rng.random() < 0.5:
        base = tuple(rng.randint(190, 255) for _ in range(3))
    else:
        base = tuple(rng.randint(0, 70) for _ in range(3))
    return Image.new("RGB", (width, height), base), None, base


def colour_distance(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def render_scene(rng, nprng, width, height, force=None):
    """Draws one shape inside the central square of a width x height canvas, so CLIP's centre
    crop keeps it; force=(colour, shape) picks them. Returns (image, (size name, colour, shape),
    background name)."""
    while True:
        image, bg_name, bg_mean = make_background(width, height, rng, nprng)
        if force is None or colour_distance(COLOURS[force[0]], bg_mean) > 120:
            break
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    while True:
        colour_name = rng.choice(list(COLOURS))
        if colour_distance(COLOURS[colour_name], bg_mean) > 120:
            break
    shape = rng.choice(SHAPES)
    if force is not None:
        colour_name, shape = force
    size_name = rng.choice(["small", "large", None, None])
    lo, hi = {"small": (0.22, 0.28), "large": (0.36, 0.44), None: (0.28, 0.36)}[size_name]
    r = rng.uniform(lo, hi) * side
    cx = x0 + rng.uniform(r + 1, side - r - 1)
    cy = y0 + rng.uniform(r + 1, side - r - 1)
    angle = 0.0 if shape == "circle" else rng.uniform(-0.2, 0.2)
    draw_shape(ImageDraw.Draw(image), shape, jitter(COLOURS[colour_name], rng), cx, cy, r, angle)
    return image, (size_name, colour_name, shape), bg_name


def describe(obj, with_size=True):
    size_name, colour_name, shape = obj
    words = ([size_name] if size_name and with_size else []) + ([colour_name] if colour_name else []) + [shape]
    return " ".join(words)


CAPTION_TEMPLATES = ["a {}", "a photo of a {}.", "a picture of a {}", "{}", "a drawing of a {}", "a {} shape"]


def caption(rng, obj, bg_name):
    text = rng.choice(CAPTION_TEMPLATES).format(describe(obj, with_size=rng.random() < 0.7))
    if bg_name and rng.random() < 0.5:
        text = text.rstrip(".") + f" on a {bg_name} background"
    return text


def caption_vocabulary_corpus():
    """Every word pattern the captions use, for learning the BPE (deterministic, enumerated)."""
    texts = []
    for c in list(COLOURS) + ["shape only"]:
        for s in SHAPES:
            for size in ["small", "large", None]:
                obj = describe((size, c, s)) if c != "shape only" else describe((size, None, s))
                for t in CAPTION_TEMPLATES:
                    texts.append(t.format(obj))
                    for bg in NAMED_BACKGROUNDS:
                        texts.append(t.format(obj).rstrip(".") + f" on a {bg} background")
    return texts


def preprocess(image):
    """OpenAI's _transform(n_px): Resize(n_px, bicubic) of the short side, CenterCrop(n_px),
    convert("RGB"), ToTensor, Normalize(MEAN, STD); torchvision 0.14's arithmetic."""
    n_px = IMAGE_SIZE
    w, h = image.size
    if (w, h) != (n_px, n_px):
        short, long = (w, h) if w <= h else (h, w)
        if short != n_px:
            new_short, new_long = n_px, int(n_px * long / short)
            new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
            image = image.resize((new_w, new_h), Image.BICUBIC)
        w, h = image.size
        top, left = int(round((h - n_px) / 2.0)), int(round((w - n_px) / 2.0))
        image = image.crop((left, top, left + n_px, top + n_px))
    image = image.convert("RGB")
    x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return (x - mean) / std


# ---------------------------------------------------------------------------------------------
# safetensors, written by hand (the format is tiny)


def save_safetensors(tensors, path, metadata=None):
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep the data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").copy()).reshape(info["shape"])
    return out


# ---------------------------------------------------------------------------------------------


def make_batch(step, batch_size, tokenizer, seed, shape_only=0.0):
    """A batch of single-object scenes holding every colour x shape the same number of times
    (batch_size / 40), each with its own size, position, background and caption template, in
    random order. A fraction `shape_only` of the captions leave the colour out ("a large
    star"), which only the shape can match. Returns images, tokens and `matches`: matches[i, j]
    is 1 when caption j is true of image i, and each image's shape index."""
    rng = random.Random(seed * 1_000_003 + step)
    nprng = np.random.default_rng(seed * 1_000_003 + step)
    order = [i % len(LABELS) for i in range(batch_size)]
    rng.shuffle(order)
    images, tokens, named = [], [], []
    for index in order:
        side = rng.choice([64, 64, 72, 80, 96, 112, 128])
        colour, shape = LABELS[index].split()
        image, (size_name, _, _), bg_name = render_scene(rng, nprng, side, side, force=(colour, shape))
        if rng.random() < shape_only:
            colour = None
        images.append(preprocess(image))
        tokens.append(caption(rng, (size_name, colour, shape), bg_name))
        named.append((colour, shape))
    truth = [LABELS[index].split() for index in order]
    matches = torch.tensor([[float(s == ns and (nc is None or c == nc)) for nc, ns in named] for c, s in truth])
    shapes = torch.tensor([SHAPES.index(s) for _, s in truth])
    return torch.stack(images), tokenizer.tokenize(tokens, CONTEXT_LENGTH), matches, shapes


@torch.no_grad()
def zero_shot(model, tokenizer, images):
    """CLIP's zero-shot recipe in float32: mean of normalised prompt features per label."""
    texts = [t.format(label) for label in LABELS for t in TEMPLATES]
    text_features = model.encode_text(tokenizer.tokenize(texts, CONTEXT_LENGTH))
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    text_features = text_features.reshape(len(LABELS), len(TEMPLATES), -1).mean(dim=1)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    pixels = torch.stack([preprocess(im) for im in images])
    image_features = model.encode_image(pixels)
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    logits = model.logit_scale.exp() * image_features @ text_features.t()
    return logits.softmax(dim=-1)


def eval_scenes(seed, count):
    """Single-object scenes, some non-square (CLIP's centre crop) and some larger than the
    model's input (its bicubic resize)."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    scenes = []
    for i in range(count):
        w = rng.choice([64, 64, 80, 96, 128])
        h = w if rng.random() < 0.75 else w + rng.choice([8, 16, 24])
        if rng.random() < 0.5:
            w, h = h, w
        image, (_, colour, shape), _ = render_scene(rng, nprng, w, h)
        scenes.append((image, f"{colour} {shape}"))
    return scenes


def accuracies(probs, truth):
    """(top-1, colour right, shape right) fractions."""
    predicted = probs.argmax(dim=-1)
    colour = (predicted // len(SHAPES) == truth // len(SHAPES)).float().mean().item()
    shape = (predicted % len(SHAPES) == truth % len(SHAPES)).float().mean().item()
    return (predicted == truth).float().mean().item(), colour, shape


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/demo-model", help="where openai.safetensors and bpe.txt go")
    parser.add_argument("--eval-dir", default=None, help="write the held-out set + predictions.json here")
    parser.add_argument("--examples-dir", default=None, help="write the quick-start sample images here")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-seed", type=int, default=20240607)
    parser.add_argument("--eval-count", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--merges", type=int, default=300)
    parser.add_argument("--shape-only", type=float, default=0.3,
                        help="fraction of training captions without the colour")
    parser.add_argument("--aux-shape", type=float, default=1.0,
                        help="weight of an auxiliary shape-classification loss on the image embedding")
    parser.add_argument("--eval-every", type=int, default=0, help="print held-out accuracy every N steps")
    parser.add_argument("--eval-only", action="store_true", help="reuse --out/openai.safetensors, skip training")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    started = time.time()

    merges_text = learn_bpe(caption_vocabulary_corpus(), args.merges)
    merges_path = os.path.join(args.out, "bpe.txt")
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write(merges_text)
    tokenizer = SimpleTokenizer(merges_text)
    print(f"vocabulary: {merges_text.count(chr(10))} merges, {tokenizer.vocab_size} tokens", flush=True)

    model = CLIP(EMBED_DIM, IMAGE_SIZE, VISION_LAYERS, VISION_WIDTH, PATCH_SIZE, CONTEXT_LENGTH,
                 tokenizer.vocab_size, TEXT_WIDTH, TEXT_WIDTH // 64, TEXT_LAYERS)
    weights_path = os.path.join(args.out, "openai.safetensors")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters ({n_params * 4 / 1e6:.1f} MB as F32)", flush=True)

    if args.eval_only:
        model.load_state_dict(load_safetensors(weights_path))
    else:
        # Auxiliary shape head on the image embedding (training only, not saved): a direct
        # shape signal for the vision tower, which the contrastive loss alone gives slowly.
        shape_head = nn.Linear(EMBED_DIM, len(SHAPES))
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
        no_decay += list(shape_head.parameters()) if args.aux_shape else []
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
        warmup = max(1, args.steps // 20)
        if args.eval_every:
            probe = eval_scenes(args.eval_seed, args.eval_count)
            probe_images = [im for im, _ in probe]
            probe_truth = torch.tensor([LABELS.index(label) for _, label in probe])
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: (s + 1) / warmup if s < warmup else
            0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, args.steps - warmup))))
        model.train()
        for step in range(args.steps):
            images, tokens, matches, shapes = make_batch(step, args.batch_size, tokenizer, args.seed, args.shape_only)
            image_features = model.encode_image(images)
            text_features = model.encode_text(tokens)
            logits_per_image = model.logit_scale.exp() * F.normalize(image_features, dim=1) @ \
                F.normalize(text_features, dim=1).t()
            logits_per_text = logits_per_image.t()
            # The CLIP paper's symmetric cross-entropy, except that every caption true of an
            # image is a positive (uniform target over them) rather than a false negative. With
            # 40 full captions a batch this is exactly CLIP's identity target.
            loss = (F.cross_entropy(logits_per_image, matches / matches.sum(dim=1, keepdim=True)) +
                    F.cross_entropy(logits_per_text, matches.t() / matches.t().sum(dim=1, keepdim=True))) / 2
            if args.aux_shape:
                loss = loss + args.aux_shape * F.cross_entropy(shape_head(image_features), shapes)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            if step % 50 == 0 or step == args.steps - 1:
                line = (f"step {step:5d}  loss {loss.item():.4f}  scale {model.logit_scale.exp().item():6.2f}  "
                        f"{time.time() - started:6.0f}s")
                if args.eval_every and (step % args.eval_every == 0 or step == args.steps - 1):
                    model.eval()
                    overall, colour, shape = accuracies(zero_shot(model, tokenizer, probe_images), probe_truth)
                    model.train()
                    line += f"  held-out top-1 {overall * 100:5.1f}%  colour {colour * 100:5.1f}%  shape {shape * 100:5.1f}%"
                print(line, flush=True)
        model.eval()
        save_safetensors(model.state_dict(), weights_path)
    train_seconds = time.time() - started

    # Held-out zero-shot accuracy, through the reference preprocessing.
    scenes = eval_scenes(args.eval_seed, args.eval_count)
    probs = zero_shot(model, tokenizer, [im for im, _ in scenes])
    predicted = probs.argmax(dim=-1)
    truth = torch.tensor([LABELS.index(label) for _, label in scenes])
    accuracy, colour_accuracy, shape_accuracy = accuracies(probs, truth)
    print(f"held-out zero-shot top-1: {accuracy * 100:.1f}% of {len(scenes)} "
          f"(colour {colour_accuracy * 100:.1f}%, shape {shape_accuracy * 100:.1f}%)", flush=True)

    if args.eval_dir:
        os.makedirs(args.eval_dir, exist_ok=True)
        records = []
        for i, ((image, label), p) in enumerate(zip(scenes, probs)):
            name = f"{i:03d}.png"
            path = os.path.join(args.eval_dir, name)
            image.save(path, optimize=True)
            records.append({"file": name, "label": label, "predicted": LABELS[int(p.argmax())],
                            "probabilities": [float(v) for v in p]})
        # Re-read the files as the test will, so the reference is computed on exactly what is saved.
        reread = zero_shot(model, tokenizer, [Image.open(os.path.join(args.eval_dir, r["file"])) for r in records])
        assert torch.equal(reread, probs), "saved PNGs do not reproduce the predictions"
        with open(os.path.join(args.eval_dir, "predictions.json"), "w") as f:
            json.dump({"labels": LABELS, "templates": TEMPLATES, "mean": list(MEAN), "std": list(STD),
                       "logit_scale": float(model.logit_scale.exp()), "accuracy": accuracy,
                       "images": records}, f, indent=1)
            f.write("\n")

    if args.examples_dir:
        os.makedirs(args.examples_dir, exist_ok=True)
        wanted = ["red circle", "blue square", "green triangle", "yellow star", "purple cross"]
        rng = random.Random(7)
        nprng = np.random.default_rng(7)
        for label in wanted:
            colour, shape = label.split()
            for attempt in range(30):
                image = Image.new("RGB", (128, 128), jitter((250, 250, 250), rng, 5))
                r = rng.uniform(0.26, 0.34) * 128
                draw_shape(ImageDraw.Draw(image), shape, jitter(COLOURS[colour], rng),
                           rng.uniform(44, 84), rng.uniform(44, 84), r, 0.0 if shape in ("circle", "square", "cross") else rng.uniform(-0.3, 0.3))
                p = zero_shot(model, tokenizer, [image])[0]
                if LABELS[int(p.argmax())] == label and float(p.max()) > 0.8:
                    break
            image.save(os.path.join(args.examples_dir, label.replace(" ", "_") + ".png"), optimize=True)
            print(f"example {label}: top {LABELS[int(p.argmax())]} {float(p.max()):.3f}", flush=True)

    digest = hashlib.sha256(open(weights_path, "rb").read()).hexdigest()
    print(f"time: {train_seconds:.0f}s training, {time.time() - started:.0f}s total")
    print(f"weights: {weights_path} (sha256 {digest})")
    print(f"merges:  {merges_path}")


if __name__ == "__main__":
    main()
