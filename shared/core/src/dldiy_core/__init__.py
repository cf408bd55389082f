"""dldiy-core: the small shared core of the dldiy paper packages.

Device and seeding, a Trainer (epochs or steps, clipping, hooks, JSONL metrics, atomic
checkpoints with exact resume, DistributedDataParallel under torchrun), pickle-free
checkpoints, dataclass configs on the command line, run reports, and test helpers.
"""

from .checkpoint import CheckpointError, load_checkpoint, load_module_state, save_checkpoint
from .cli import Commands, add_output_args, emit_json
from .config import (
    ConfigError,
    add_config_args,
    bounded,
    check_config,
    config_from_args,
    from_dict,
    resolve,
    save_config,
    to_dict,
)
from .data import BatchSource, DatasetBatches, TensorData
from .device import seed_everything, select_device
from .distributed import all_reduce_mean, barrier, broadcast, is_main, rank, world_size
from .errors import ArgumentParser, UserError, os_error, run_main
from .guard import (
    RUN_MARKERS,
    add_run_marker,
    check_outputs,
    holds_run,
    input_scope,
    make_dir,
    prepare_out_dir,
    prepare_out_file,
)
from .io import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_input,
    data_cache,
    open_input,
    read_idx,
    read_input,
)
from .progress import progress, setup_logging
from .report import Report, new_figure, write_wav
from .results import bf16_isa, emit_results, read_results, write_results
from .trainer import Diverged, Hook, TrainConfig, Trainer, TrainState, load_weights

__version__ = "0.2.0"

__all__ = [
    "ArgumentParser", "BatchSource", "CheckpointError", "Commands", "ConfigError",
    "DatasetBatches", "Diverged", "Hook", "Report", "TensorData", "TrainConfig", "TrainState",
    "Trainer",
    "UserError", "add_config_args", "all_reduce_mean", "atomic_path", "atomic_write_bytes",
    "atomic_write_text", "barrier", "bf16_isa", "broadcast", "config_from_args", "data_cache",
    "emit_json",
    "emit_results", "read_results", "write_results",
    "from_dict",
    "is_main", "load_checkpoint", "load_module_state", "load_weights", "new_figure", "progress",
    "rank", "resolve",
    "run_main", "save_checkpoint", "save_config", "seed_everything", "select_device",
    "setup_logging", "to_dict", "world_size", "write_wav",
    # reliability: outputs never replace inputs or runs, OS errors and bad settings as one line
    "RUN_MARKERS", "add_output_args", "add_run_marker", "bounded", "check_config", "check_input",
    "check_outputs", "holds_run", "input_scope", "make_dir", "open_input", "os_error",
    "prepare_out_dir", "prepare_out_file", "read_idx", "read_input",
]
