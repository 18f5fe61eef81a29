"""The settings of ``curate train clip`` (:mod:`vlcurate.pipeline.train.clip`), and which of
them a resumed run must share with its checkpoint."""

from dataclasses import dataclass, field
from typing import ClassVar

from vlcurate.pipeline.config import Config

RESUME_KEYS = (
    "shards",
    "model",
    "batch_size",
    "samples_per_epoch",
    "epochs",
    "lr",
    "weight_decay",
    "warmup_steps",
    "accum_steps",
    "workers",
    "seed",
    "precision",
    "shuffle_buffer",
)
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass
class TrainConfig(Config):
    """The settings of ``curate train clip``."""

    section: ClassVar[str] = "train"
    shards: str | list[str] = field(
        default="",
        metadata={"help": "shard URLs: a brace pattern (data/{00000..00099}.tar) or list"},
    )
    model: str = field(default="ViT-B-32", metadata={"help": "open_clip model name or config JSON"})
    output: str = field(default="runs/clip", metadata={"help": "run directory"})
    batch_size: int = field(
        default=256, metadata={"help": "pairs per micro-batch (contrastive)", "min": 1}
    )
    samples_per_epoch: int = field(
        default=100_000, metadata={"help": "samples per epoch", "min": 1}
    )
    epochs: int = field(default=1, metadata={"help": "epochs", "min": 1})
    lr: float = field(default=5e-4, metadata={"help": "peak learning rate", "above": 0})
    weight_decay: float = field(
        default=0.2,
        metadata={"help": "AdamW decay (not on biases, norms, embeddings, scale)", "min": 0},
    )
    warmup_steps: int = field(
        default=100, metadata={"help": "linear warmup, optimizer steps", "min": 0}
    )
    accum_steps: int = field(
        default=1,
        metadata={"help": "micro-batches whose gradients make one optimizer step", "min": 1},
    )
    workers: int = field(default=2, metadata={"help": "DataLoader decode processes", "min": 0})
    seed: int = field(
        default=0, metadata={"help": "seed for init, shard sampling, shuffle, aug", "min": 0}
    )
    checkpoint_every: int = field(
        default=1000, metadata={"help": "checkpoint every N steps (0: only at the end)", "min": 0}
    )
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:N, or auto"})
    precision: str = field(
        default="fp32",
        metadata={"help": "autocast precision, on CUDA only", "choices": PRECISIONS},
    )
    shuffle_buffer: int = field(
        default=1000, metadata={"help": "sample shuffle buffer size", "min": 0}
    )
    max_steps: int | None = field(
        default=None,
        metadata={"help": "stop (and checkpoint) after this many steps in all", "min": 1},
    )
    progress: bool = field(default=True, metadata={"help": "show a tqdm progress bar"})
