from setuptools import find_packages, setup

# data parallelism (minitorch_alex.distributed): mpi4py and an MPI with its mpiexec, from wheels
DIST = ["mpi4py>=4", "mpich>=4; sys_platform != 'win32'"]
# CuPy: 14.0 is the first release with the [ctk] extra (the CUDA toolkit wheels NVRTC needs:
# libnvrtc and the cuda_fp16.h/cuda_bf16.h headers every kernel includes), with a CUDA 13 build
# and with bfloat16. Pick the build that matches the NVIDIA driver (README, "GPU"): cuda12 for
# drivers >= 525, cuda13 for drivers >= 580.
CUPY_MIN = "14.0"
# tests/test_cuda_nvrtc.py: compile every kernel with NVRTC, no GPU needed (~130 MB of wheels,
# ~375 MB installed); part of dev so that the README's test command runs it
NVRTC = [f"cupy-cuda13x>={CUPY_MIN}", "nvidia-cuda-nvrtc==13.*", "nvidia-cuda-runtime==13.*"]
# NCCL for data parallel on GPUs (minitorch_alex.distributed.NcclComm); CuPy's [ctk] extra leaves it out.
# 2.27.7 is the min_pypi_version in CuPy 14.2's wheel metadata (cupy/.data/_wheel.json). In dev too:
# its get_unique_id and NcclCommunicator's argument types work without a GPU, so
# tests/test_distributed_nccl.py holds NcclComm to the real library on the CPU (~200 MB wheel).
NCCL_PIN = ">=2.27.7,<3; sys_platform == 'linux'"
NCCL12, NCCL13 = f"nvidia-nccl-cu12{NCCL_PIN}", f"nvidia-nccl-cu13{NCCL_PIN}"
KERNELS = "minitorch_alex_kernels"  # the import name of the repository's kernels/ folder

setup(
    name="minitorch_alex",
    version="0.1.0",
    description="A from-scratch deep-learning framework (NumPy/CuPy) that reproduces AlexNet",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The repository's kernels/ folder installs as minitorch_alex_kernels: a top-level "kernels" is
    # another project on the package index (a kernel hub), and installing both would break one.
    # From a source checkout the same name comes from minitorch_alex_kernels.py (not installed).
    packages=[*find_packages(include=["minitorch_alex", "minitorch_alex.*"]), KERNELS,
              *(f"{KERNELS}.{name}" for name in find_packages("kernels"))],
    package_dir={KERNELS: "kernels"},
    # the CUDA sources are read and compiled (NVRTC, through CuPy) at run time
    package_data={f"{KERNELS}.cuda": ["*.cu", "*.cuh"]},
    install_requires=["numpy>=1.24", "pillow>=9", "numba>=0.58", "tqdm>=4.60", "matplotlib>=3.6"],
    extras_require={
        "gpu": [f"cupy-cuda12x[ctk]>={CUPY_MIN}", NCCL12],
        "gpu-cuda12": [f"cupy-cuda12x[ctk]>={CUPY_MIN}", NCCL12],
        "gpu-cuda13": [f"cupy-cuda13x[ctk]>={CUPY_MIN}", NCCL13],
        "nvrtc": NVRTC,
        "dist": DIST,
        # ILSVRC-2012's devkit: its data/meta.mat (the class-id order) is read with SciPy (no pickle)
        "imagenet": ["scipy>=1.10"],
        # torch is the test and benchmark oracle only; the package never imports it
        "dev": ["pytest>=7", "hypothesis>=6.80", "torch==2.13.0", "pytest-xdist>=3",
                "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6.29",
                # ONNX export (mt.onnx) and its check in onnxruntime
                "onnx>=1.15", "onnxruntime>=1.17", "ruff>=0.6",
                # which BLAS kernels the benchmark's processes run (benchmarks/bench_cpu.py's machine table)
                "threadpoolctl>=3",
                # the devkit meta.mat test of tests/test_hostile_practice.py
                "scipy>=1.10", *DIST, *NVRTC, NCCL13],
    },
)
