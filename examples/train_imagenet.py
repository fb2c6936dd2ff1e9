"""Train AlexNet (Krizhevsky, Sutskever, Hinton, NIPS 2012).

    python examples/train_imagenet.py                          # built-in generated data, a few minutes
    python examples/train_imagenet.py --data fashion-mnist      # Debian's dataset-fashion-mnist
    python examples/train_imagenet.py --data /data/imagenet     # ILSVRC-2012 or any ImageFolder tree
    python examples/train_imagenet.py --devices cpu:0,cpu:1     # the paper's two-tower split
    python examples/train_imagenet.py --resume                  # continue from runs/alexnet/last.npz
    mpiexec -n 2 python examples/train_imagenet.py              # data parallel on 2 ranks (same run as 1)
    python examples/train_imagenet.py --evaluate --resume runs/alexnet/best.npz --ten-crop

Run with --help for every flag. The logic lives in minitorch_alex.train.
"""
import _script

_script.find_package()

# Before anything loads NumPy: OpenBLAS's AVX-512 kernels on a CPU it does not know but that has
# them (kernels/blas_core.py; an OPENBLAS_CORETYPE of your own is kept).
from minitorch_alex_kernels.blas_core import choose_openblas_core  # noqa: E402

choose_openblas_core()
_script.import_package()  # a bad MINITORCH_ALEX_* variable: one line, exit 2

from minitorch_alex.train import main  # noqa: E402

if __name__ == "__main__":
    main()
