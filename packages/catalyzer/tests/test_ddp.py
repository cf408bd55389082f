"""Two torchrun processes (gloo, CPU): process 0's negatives everywhere, the weights of one
process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dldiy_catalyzer.cli import main
from dldiy_core.testing import assert_same_weights, run_cli

RUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]

PROBE = """
import json, sys
import numpy as np, torch
from dldiy_catalyzer.config import PRESETS, CatalyzerConfig
from dldiy_catalyzer.data import exact_knn
from dldiy_catalyzer.models import Catalyzer, embed
from dldiy_catalyzer.train import TripletBatches
from dldiy_core import rank, resolve, world_size
from dldiy_core.distributed import init_distributed
from dldiy_core.testing import clustered_points

init_distributed(torch.device("cpu"))
x, _ = clustered_points(600, 16, k=20, spread=0.3, seed=0)  # the same data on every rank
torch.manual_seed(rank())  # a different network on each rank: different local negatives
net = Catalyzer(16, 24, 32)
cfg = resolve(CatalyzerConfig, PRESETS, "tiny", None, ["loss.rank_negative=20"])
source = TripletBatches(x, exact_knn(x, x, 11)[:, 1:], net, cfg, None, rank(), world_size())
source.mine(0)
y = embed(net, x).numpy()
own = exact_knn(y, y, 21)[:, -1]
json.dump({"own": own.tolist(), "held": source.negatives.tolist()},
          open(f"{sys.argv[1]}/rank{rank()}.json", "w"))
"""


def test_every_rank_holds_process_0s_negatives(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    run = subprocess.run([*RUN, str(probe), str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["own"] != r1["own"]  # the ranks' networks disagree, so the test can fail
    assert r0["held"] == r0["own"]
    assert r1["held"] == r0["own"]


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(tmp_path, vectors_file):
    """A batch split over 2 processes (BatchNorm and KoLeo over the whole batch) gives the
    weights of the same batch in one process, up to float rounding."""
    sets = ["--preset", "tiny", "--set", f"data.source={vectors_file}",
            "--set", "data.n_base=1500", "--set", "data.n_train=1000", "--set", "data.n_query=100",
            "--set", "train.epochs=2", "--set", "loss.rank_negative=20"]
    one = run_cli(main, ["train", "--out", str(tmp_path / "one"), *sets])
    assert one.code == 0, one.err
    two = subprocess.run([*RUN, "-m", "dldiy_catalyzer", "train", "--out", str(tmp_path / "two"),
                          *sets], capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert_same_weights(tmp_path / "one/checkpoint.safetensors",
                        tmp_path / "two/checkpoint.safetensors", atol=1e-4)
    losses = [[json.loads(x)["loss"] for x in (tmp_path / d / "metrics.jsonl").read_text()
               .splitlines() if json.loads(x)["kind"] == "train"] for d in ("one", "two")]
    assert len(losses[0]) > 2 and np.allclose(losses[0], losses[1], rtol=1e-4)
    result = run_cli(main, ["eval", "--run", str(tmp_path / "two"),
                            "--json", str(tmp_path / "r.json")])
    assert result.code == 0, result.err
