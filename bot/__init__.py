"""Xiaoer (店小二): the asyncio core of an open-source customer-service bot for online shops."""

import os

# One BLAS thread per process, set before numpy loads: understanding a message is a few small matrix
# products, where a second BLAS thread only fights the event loop (and other processes) for the
# cores — on a busy 2-core machine it made a message 10x slower. Scale out with processes instead.
# An operator's explicit setting wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
