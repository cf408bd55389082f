"""On a CUDA device: the front ends give what they give on the CPU, and the band plan keeps its
tensors on the device (nothing uploaded again after the first call)."""

import pytest
import torch
from test_band_exact import low_tones_over_a_quiet_floor, real_speech

from dldiy_tdfbanks.filterbank import TDFilterbank
from dldiy_tdfbanks.models import make_frontend

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    items = [*real_speech(), low_tones_over_a_quiet_floor()]
    x = torch.zeros(len(items), max(len(i) for i in items))
    for k, item in enumerate(items):
        x[k, :len(item)] = item
    return x, torch.tensor([len(i) for i in items])


@pytest.mark.parametrize("name", ["mfsc", "tdfb-fixed", "tdfb-learn-all", "leaf", "sincnet"])
def test_front_ends_on_the_device_equal_the_cpu(name):
    x, lengths = batch()
    torch.manual_seed(0)
    cpu = make_frontend(name).eval()
    gpu = make_frontend(name).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    with torch.no_grad():
        a = cpu(x, lengths)[0]
        b = gpu(x.cuda(), lengths.cuda())[0].cpu()
    assert float((a - b).abs().max()) < 0.02, name


def test_band_plan_stays_on_the_device():
    x, lengths = batch()
    fe = TDFilterbank().cuda()
    with torch.no_grad():
        fe(x.cuda(), lengths.cuda())
        plan = fe.subband_plan()
        assert fe.subband_plan() is plan
        keys = list(plan._consts)
        assert [k[0].type for k in keys] == ["cuda"]
        assert all(r.is_cuda for key, bands in plan._cache.items() for _, r in bands
                   if key[1] is not None and key[1].type == "cuda")
        fe(x.cuda(), lengths.cuda())
        assert list(plan._consts) == keys  # nothing made again
