import pytest
import torch


@pytest.fixture(scope="session")
def lite0():
    from dldiy_imagenet_bias.models import load_classifier

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    return load_classifier("lite0")


@pytest.fixture(scope="session")
def wordnet():
    from dldiy_imagenet_bias.wordnet import load_wordnet

    return load_wordnet()
