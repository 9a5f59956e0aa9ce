import os
import sys

sys.path.insert(0, os.environ["BENCH_HANDLERS"])
from busy import handler as cpu
from hello import handler as hello
from sleepy import handler as io

__all__ = ["cpu", "hello", "io"]
