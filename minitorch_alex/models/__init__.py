"""Models (``mt.models``)."""
from .alexnet import AlexNet, alexnet
from .two_tower import AlexNetTwoTower, Traffic

__all__ = ["AlexNet", "AlexNetTwoTower", "Traffic", "alexnet"]
