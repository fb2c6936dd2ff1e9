from setuptools import find_packages, setup

# data parallelism (minitorch_alex.distributed): mpi4py and an MPI with its mpiexec, from wheels
DIST = ["mpi4py>=4", "mpich>=4; sys_platform != 'win32'"]

setup(
    name="minitorch_alex",
    version="0.1.0",
    description="A from-scratch deep-learning framework (NumPy/CuPy) that reproduces AlexNet",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["minitorch_alex", "minitorch_alex.*", "kernels", "kernels.*"]),
    install_requires=["numpy>=1.24", "pillow>=9", "numba>=0.58", "tqdm>=4.60", "matplotlib>=3.6"],
    extras_require={
        "gpu": ["cupy-cuda12x>=13"],
        "dist": DIST,
        # torch is the test and benchmark oracle only; the package never imports it
        "dev": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "pytest-xdist>=3",
                "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6.29",
                # ONNX export (mt.onnx) and its check in onnxruntime
                "onnx>=1.15", "onnxruntime>=1.17", *DIST],
    },
)
