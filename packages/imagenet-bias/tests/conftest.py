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


@pytest.fixture(scope="session")
def tiny_setup(tmp_path_factory):
    """A small real-architecture model (torchvision mobilenet_v3_small, seeded random weights,
    as a .safetensors state_dict) and an ImageFolder of generated PNGs in wnid folders."""
    import numpy as np
    import torchvision
    from PIL import Image
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    net = torchvision.models.get_model("mobilenet_v3_small", weights=None, num_classes=1000)
    weights = root / "mnv3.safetensors"
    save_file(net.state_dict(), str(weights))
    images = root / "images"
    rng = np.random.default_rng(0)
    for wnid in ("n02123045", "n02110185", "n07920052"):
        (images / wnid).mkdir(parents=True)
        for i in range(5):
            arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(images / wnid / f"{i}.png")
    return {"weights": weights, "images": images, "root": root}


def tiny_args(setup, *extra):
    return ["--set", "model.name=mobilenet_v3_small", "--set", f"model.weights={setup['weights']}",
            "--set", "model.resize=72", "--set", "model.crop=64",
            "--set", f"data.images={setup['images']}", "--set", "attack.n_images=4",
            "--set", "attack.steps=2", "--set", "attack.epsilons=[0,0.01]",
            "--set", "attack.deepfool_images=2", "--set", "explain.ig_steps=4",
            "--set", "explain.n_images=2", "--set", "critic.min_images=3",
            "--set", "critic.prototypes=2", "--set", "critic.criticisms=1", *extra]
