"""dldiy-imagenet-bias: "ConvNets and ImageNet Beyond Accuracy: Understanding Mistakes and
Uncovering Biases" (Stock & Cissé, ECCV 2018), as a toolkit you point at your own model.

How bad are a classifier's mistakes really (top-1/top-5 on acceptable-label sets, confusions,
WordNet severity, rectified accuracy from a human-study page), what do adversarial examples say
(FGSM, PGD, DeepFool; robustness curves; Grad-CAM / integrated gradients and nearest
prototypes), and which biases do the class prototypes reveal (MMD-critic prototypes and
criticisms in penultimate feature space, attribute statistics). The embedded model is a real
ImageNet-1k EfficientNet-Lite0; the images here are clip-art and bundled photos.
"""

from .attacks import deepfool, fgsm, pgd, robustness_curve
from .classes import ImageNetClasses, imagenet_classes
from .config import PRESETS, BiasConfig
from .criticism import brute_force_prototypes, criticize, select_criticisms, select_prototypes
from .data import ImageSet, Item, clipart_set, image_folder, load_set, photo_set
from .explain import grad_cam, integrated_gradients, nearest_prototypes
from .fused import FusedLite0
from .lite0 import EfficientNetLite0, fold_batchnorm, load_lite0
from .mistakes import real_accuracy, records, rectified_accuracy, summarise
from .models import Classifier, Preprocess, load_classifier
from .predict import Predictions, predict
from .wordnet import WordNet, load_wordnet

__all__ = ["PRESETS", "BiasConfig", "Classifier", "EfficientNetLite0", "FusedLite0",
           "ImageNetClasses", "ImageSet", "Item", "Predictions", "Preprocess", "WordNet",
           "brute_force_prototypes", "clipart_set", "criticize", "deepfool", "fgsm",
           "fold_batchnorm", "grad_cam", "image_folder", "imagenet_classes",
           "integrated_gradients", "load_classifier", "load_lite0", "load_set", "load_wordnet",
           "nearest_prototypes", "pgd", "photo_set", "predict", "real_accuracy",
           "rectified_accuracy", "records", "robustness_curve", "select_criticisms",
           "select_prototypes", "summarise"]
