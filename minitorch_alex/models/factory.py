"""The models by name: the paper's ``alexnet`` (one device, or the two-tower split over two),
torchvision's ``alexnet_torchvision`` and ``get_model``, which picks one of them by name.

The ``devices`` argument is read here, once: None, a device (``"cpu"``, ``"cuda:0"``, a
``Device``) or a sequence of one or two of them.
"""
from __future__ import annotations

from .alexnet import AlexNet
from .alexnet_torchvision import AlexNetTorchvision
from .two_tower import AlexNetTwoTower


def device_list(devices, most=2, who="alexnet") -> tuple:
    """``devices`` as a tuple of 1 to ``most`` devices ((None,): the default device)."""
    if devices is None or not isinstance(devices, (list, tuple)):
        return (devices,)
    if not 1 <= len(devices) <= most:
        raise ValueError(f"{who}: expected 1 to {most} devices, got devices={devices!r}")
    return tuple(devices)


def alexnet(num_classes=1000, devices=None, **kwargs):
    """The paper's AlexNet; keyword arguments pass through.

    ``devices``: None or one device -> ``AlexNet`` (the towers as groups=2 on that device);
    two devices, e.g. ``("cuda:0", "cuda:1")`` or ``("cpu:0", "cpu:1")`` -> ``AlexNetTwoTower``,
    the paper's split with cross-device copies at conv3, fc6, fc7 and fc8.
    """
    devices = device_list(devices)
    if len(devices) == 1:
        return AlexNet(num_classes=num_classes, device=devices[0], **kwargs)
    return AlexNetTwoTower(num_classes=num_classes, devices=devices, **kwargs)


def alexnet_torchvision(num_classes=1000, devices=None, **kwargs):
    """torchvision's single-tower AlexNet on one device (``devices``: None, a device or one of them)."""
    (device,) = device_list(devices, most=1, who="alexnet_torchvision")
    return AlexNetTorchvision(num_classes=num_classes, device=device, **kwargs)


ARCHITECTURES = {"alexnet": alexnet, "alexnet-torchvision": alexnet_torchvision}


def get_model(name="alexnet", **kwargs):
    """The architecture called ``name`` (a key of ``ARCHITECTURES``: 'alexnet' is the 2012 paper's,
    'alexnet-torchvision' torchvision's single-tower variant); keyword arguments pass through."""
    if name not in ARCHITECTURES:
        raise ValueError(f"get_model: unknown architecture {name!r}, expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name](**kwargs)
