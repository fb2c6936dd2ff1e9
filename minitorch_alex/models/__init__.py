"""Models (``mt.models``): the paper's AlexNet (grouped or two-tower), torchvision's variant, and
``get_model`` to pick one by name; ``Classifier`` for inference from a checkpoint."""
from .alexnet import AlexNet, alexnet
from .alexnet_torchvision import AlexNetTorchvision, alexnet_torchvision, from_torchvision_state_dict
from .classifier import Classifier, model_from_checkpoint
from .two_tower import AlexNetTwoTower, Traffic, convert_parameter_list, convert_state_dict, parameter_names

ARCHITECTURES = {"alexnet": alexnet, "alexnet-torchvision": alexnet_torchvision}


def get_model(name="alexnet", **kwargs):
    """The architecture called ``name`` (a key of ``ARCHITECTURES``: 'alexnet' is the 2012 paper's,
    'alexnet-torchvision' torchvision's single-tower variant); keyword arguments pass through."""
    if name not in ARCHITECTURES:
        raise ValueError(f"get_model: unknown architecture {name!r}, expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**kwargs)


__all__ = [
    "ARCHITECTURES", "AlexNet", "AlexNetTorchvision", "AlexNetTwoTower", "Classifier", "Traffic", "alexnet",
    "alexnet_torchvision", "convert_parameter_list", "convert_state_dict", "from_torchvision_state_dict",
    "get_model", "model_from_checkpoint", "parameter_names",
]
