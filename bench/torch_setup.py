"""Common PyTorch settings of the bench scripts: exact fp32 (no TF32, like caf's default), cuDNN's
autotuner on, an optional thread count. Returns the device and a function that waits for it."""
import torch


def setup(device, threads=0):
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    return dev, sync
