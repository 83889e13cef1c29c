"""Writer of caf's fixture files (format in tests/fixture.h), shared by the reference scripts.

Little-endian: b"CAFX", u32 version, u32 count, then per tensor: u32 name length, utf-8 name,
u32 ndim, i64 dims[ndim], float32 data in C order.
"""
import struct

import numpy as np

VERSION = 1  # must equal kFixtureVersion in tests/fixture.h


def write(path, tensors):
    """tensors: list of (name, torch tensor); every tensor is stored as float32."""
    with open(path, "wb") as f:
        f.write(b"CAFX" + struct.pack("<II", VERSION, len(tensors)))
        for name, t in tensors:
            b = name.encode("utf-8")
            f.write(struct.pack("<I", len(b)) + b + struct.pack("<I", t.dim()))
            f.write(struct.pack(f"<{t.dim()}q", *t.shape))
            f.write(np.ascontiguousarray(t.detach().numpy(), dtype="<f4").tobytes())
