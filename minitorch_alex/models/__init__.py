"""Models (``mt.models``)."""
from .alexnet import AlexNet, alexnet

__all__ = ["AlexNet", "alexnet"]
