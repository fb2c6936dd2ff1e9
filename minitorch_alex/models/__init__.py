"""Models (``mt.models``): the paper's AlexNet (grouped or two-tower), torchvision's variant, and
``get_model`` to pick one by name; ``Classifier`` for inference from a checkpoint."""
from .alexnet import AlexNet
from .alexnet_torchvision import AlexNetTorchvision, from_torchvision_state_dict
from .classifier import Classifier, model_from_checkpoint
from .factory import ARCHITECTURES, alexnet, alexnet_torchvision, get_model
from .two_tower import AlexNetTwoTower, Traffic, convert_parameter_list, convert_state_dict, parameter_names

__all__ = [
    "ARCHITECTURES", "AlexNet", "AlexNetTorchvision", "AlexNetTwoTower", "Classifier", "Traffic", "alexnet",
    "alexnet_torchvision", "convert_parameter_list", "convert_state_dict", "from_torchvision_state_dict",
    "get_model", "model_from_checkpoint", "parameter_names",
]
