"""``TrainConfig``: the settings of one training run, as the ``Trainer`` takes them and its
checkpoints keep them (``config`` in the meta; ``--resume`` reads them back, ``options.SETTINGS``)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    epochs: int = 90
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    workers: int = 2
    devices: tuple = ("cpu",)
    out: str = "runs/alexnet"
    seed: int = 0
    print_freq: int = 10
    max_steps: int | None = None  # cap on training steps per epoch (quick runs)
    max_val_batches: int | None = None
    save_every: int | None = None  # also checkpoint every this many steps
    patience: int = 0  # epochs without improvement before the lr is divided by 10
    warmup_steps: int = 0  # the lr ramps linearly from lr/warmup_steps up to lr over these first steps
    schedule: str = "plateau"  # "plateau": lr / 10 when validation error stalls (paper); "cosine": lr * (1 + cos(pi t / T)) / 2
    max_lr_drops: int = 3
    ten_crop: bool = False  # validation with 10 crops (slower)
    init: str = "paper"  # or "kaiming" (see models.alexnet.initial_values)
    arch: str = "alexnet"  # a key of models.ARCHITECTURES: the paper's, or "alexnet-torchvision"
    dropout: float = 0.5  # the paper's rate after fc6 and fc7 (0: none, e.g. to compare runs step for step)
    grad_sync: str = "overlap"  # data parallel: a distributed.MODES gradient averaging ("flat", "buckets", "overlap")
    bucket_mb: float = 25.0  # data parallel: size of a gradient bucket (modes "buckets" and "overlap")
    input_scale: float = 1.0  # multiplies the mean-subtracted 0..255 pixels
    amp: str | None = None  # "float16" or "bfloat16": mixed precision with float32 masters (minitorch_alex.amp)
    tf32: bool = False  # float32 GEMMs on TF32 tensor cores (CUDA devices only)
    pretrained: str | None = None  # fine-tuning: start from this checkpoint's layers that fit (load_pretrained)
    freeze: str | None = None  # fine-tuning: the layers up to this one (e.g. "conv5") get no updates, no decay
    head_lr_mult: float = 1.0  # lr multiplier of the layers the pretrained checkpoint did not supply
    new_layers: tuple = ()  # those layers (set by load_pretrained; kept in checkpoints for --resume)
    plots: bool = True
    progress: bool = True
    extra: dict = field(default_factory=dict)
