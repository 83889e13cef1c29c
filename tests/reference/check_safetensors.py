"""Read a caf checkpoint with nothing but Python's json and struct, as any safetensors tool would.

    python3 tests/reference/check_safetensors.py FILE R_WIDTH S_WIDTH

Checks the layout (8-byte little-endian header length, JSON header, data offsets that tile the
data section exactly), dtypes and shapes, the state-dict names, the parameter counts of both
networks (known for widths 8/4 and the paper's 128/64), caf's metadata, and initial values
(running statistics 0 and 1, first conv weights with standard deviation about 0.02).
Exit status 0 when all hold. Run by ctest (test "safetensors_python").
"""
import json
import math
import struct
import sys

KNOWN_COUNTS = {(8, 4): (272019, 112346), (128, 64): (69048579, 28374146)}


def floats(body, entry):
    begin, end = entry["data_offsets"]
    return struct.unpack(f"<{(end - begin) // 4}f", body[begin:end])


def main(path, wr, ws):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__")
    assert meta["format"] == "caf-checkpoint-1", meta
    cfg = json.loads(meta["config"])
    assert (cfg["recon_width"], cfg["discr_width"]) == (wr, ws), cfg
    end, counts = 0, {"recon": 0, "discr": 0}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, stop = t["data_offsets"]
        assert begin == end, f"{name}: gap or overlap at byte {begin} (expected {end})"
        assert t["dtype"] == "F32", name
        assert stop - begin == 4 * math.prod(t["shape"]), f"{name}: size does not match {t['shape']}"
        end = stop
        net = name.split(".")[0]
        if net in counts and "running_" not in name:
            counts[net] += math.prod(t["shape"])
        if name.endswith("running_var"):
            assert all(v == 1.0 for v in floats(body, t)), name
        if name.endswith("running_mean"):
            assert all(v == 0.0 for v in floats(body, t)), name
    assert end == len(body), f"data section has {len(body)} bytes, tensors cover {end}"
    assert header["recon.encoder.block1.0.weight"]["shape"] == [wr, 3, 3, 3]
    assert header["discr.decoder_segment.db_b.0.weight"]["shape"] == [8 * ws, 16 * ws, 3, 3]
    w = floats(body, header["recon.encoder.block1.0.weight"])
    mean = sum(w) / len(w)
    std = math.sqrt(sum((v - mean) ** 2 for v in w) / len(w))
    assert abs(mean) < 0.01 and 0.01 < std < 0.03, (mean, std)
    if (wr, ws) in KNOWN_COUNTS:
        assert (counts["recon"], counts["discr"]) == KNOWN_COUNTS[(wr, ws)], counts
    print(f"ok: {len(header)} tensors, {counts['recon']} R and {counts['discr']} S parameters, "
          f"{len(body)} data bytes, step {meta['step']}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
