"""dldiy-core: the small shared core of the dldiy paper packages.

Device and seeding, a Trainer (epochs or steps, clipping, hooks, JSONL metrics, atomic
checkpoints with exact resume, DistributedDataParallel under torchrun), pickle-free
checkpoints, dataclass configs on the command line, run reports, and test helpers.
"""

from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .cli import Commands, emit_json
from .config import (
    ConfigError,
    add_config_args,
    config_from_args,
    from_dict,
    resolve,
    save_config,
    to_dict,
)
from .data import BatchSource, DatasetBatches, TensorData
from .device import seed_everything, select_device
from .distributed import all_reduce_mean, barrier, broadcast, is_main, rank, world_size
from .errors import ArgumentParser, UserError, run_main
from .io import atomic_path, atomic_write_bytes, atomic_write_text, data_cache
from .progress import progress, setup_logging
from .report import Report, new_figure, write_wav
from .results import emit_results, read_results, write_results
from .trainer import Hook, TrainConfig, Trainer, TrainState

__version__ = "0.1.0"

__all__ = [
    "ArgumentParser", "BatchSource", "CheckpointError", "Commands", "ConfigError",
    "DatasetBatches", "Hook", "Report", "TensorData", "TrainConfig", "TrainState", "Trainer",
    "UserError", "add_config_args", "all_reduce_mean", "atomic_path", "atomic_write_bytes",
    "atomic_write_text", "barrier", "broadcast", "config_from_args", "data_cache", "emit_json",
    "emit_results", "read_results", "write_results",
    "from_dict",
    "is_main", "load_checkpoint", "load_module_state", "new_figure", "progress", "rank", "resolve",
    "run_main", "save_checkpoint", "save_config", "seed_everything", "select_device",
    "setup_logging", "to_dict", "world_size", "write_wav",
]
