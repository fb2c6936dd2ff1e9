"""Models (``mt.models``)."""
from .alexnet import AlexNet, alexnet
from .two_tower import AlexNetTwoTower, Traffic, convert_parameter_list, convert_state_dict, parameter_names

__all__ = ["AlexNet", "AlexNetTwoTower", "Traffic", "alexnet", "convert_parameter_list", "convert_state_dict",
           "parameter_names"]
