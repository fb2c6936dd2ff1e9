"""Training AlexNet end to end: the loop, checkpoints, metrics, plots and the command line."""
from ..checkpoint import load_checkpoint, save_checkpoint, write_atomic_npz
from .cli import main
from .metrics import MetricsLog, topk_correct
from .report import summary_table
from .train_config import TrainConfig
from .trainer import Trainer, TrainingDiverged

__all__ = ["MetricsLog", "TrainConfig", "Trainer", "TrainingDiverged", "load_checkpoint", "main", "save_checkpoint",
           "summary_table", "topk_correct", "write_atomic_npz"]
