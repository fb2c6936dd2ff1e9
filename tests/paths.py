"""Where the tests find the repository: ``ROOT`` (the checkout, holding examples/, benchmarks/,
README.md) and ``TESTS`` (this folder, holding the support modules), whichever layer folder a test
module sits in."""
import os

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
