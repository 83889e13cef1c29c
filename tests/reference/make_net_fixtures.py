"""Write tests/reference/nets.cafx: PyTorch's reference for caf's two networks and split training.

Run from the repository root (needs torch and numpy; CI never runs this, the output is committed):

    /usr/bin/python3 tests/reference/make_net_fixtures.py

The networks follow METHOD.md sec. 2 at reduced widths (R: w=8, S: w=4), images 32x32, batch B=2,
float32 throughout. Parameter names match the C++ side (e.g. recon.encoder.block1.0.weight,
discr.decoder_segment.db_b.3.weight); num_batches_tracked is skipped. The file holds:
    init/<name>                 every parameter and BN running buffer after the METHOD 2.3 init
    step<k>/x_clean, x_aug      [2,3,32,32] clean X batch and its augmented copy (k = 0, 1, 2)
    step<k>/y_aug, y_mask       [2,3,32,32] augmented Y batch and [2,1,32,32] its anomaly mask
    step<k>/loss_l2, loss_ssim, loss_focal, loss_total   shape [1]
    step0/rec_x, rec_y, logits  R(x_aug) in train mode, R(y_aug) in eval mode, S([y_aug, rec_y])
    step0/grad/<name>           every parameter's gradient after backward, before the Adam step
    step0/after/<name>          every parameter and BN running buffer after the first Adam step
    final/<name>                every parameter and BN running buffer after the 3 steps
A step is step_forward (METHOD 3.2), backward of loss_total, one Adam step per network.
Note: the bias of every conv that feeds a BatchNorm in training mode has an exactly-zero gradient in
exact arithmetic; its stored gradient is rounding noise, which Adam turns into ~±lr updates.

Format (little-endian, tests/fixture.h): b"CAFX", u32 version, u32 count, then per tensor:
u32 name length, utf-8 name, u32 ndim, i64 dims[ndim], float32 data in C order.
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cafx  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nets.cafx")
# Some draws are ill-conditioned (B=2: the deepest BatchNorms see 2-8 values per channel); their
# float32 step-0 gradients differ from float64 by up to ~5%. DATA_SEED (best of 1..10) gives ~2e-4.
INIT_SEED, DATA_SEED = 20240601, 1
W_R, W_S, B, H, STEPS = 8, 4, 2, 32, 3
LOSSES = ["loss_l2", "loss_ssim", "loss_focal", "loss_total"]


def double_block(cin, cmid, cout):
    return nn.Sequential(nn.Conv2d(cin, cmid, 3, padding=1), nn.BatchNorm2d(cmid), nn.ReLU(),
                         nn.Conv2d(cmid, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


def up_block(cin, cout):
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())


class Encoder(nn.Module):
    """Double blocks with a 2x2 max pool between consecutive ones; returns every block's output."""

    def __init__(self, cin, w, nblocks):
        super().__init__()
        chans = [cin, w, 2 * w, 4 * w, 8 * w] + [8 * w] * (nblocks - 4)
        for i in range(nblocks):
            setattr(self, f"block{i + 1}", double_block(chans[i], chans[i + 1], chans[i + 1]))
        self.nblocks = nblocks

    def forward(self, x):
        outs = []
        for i in range(self.nblocks):
            x = getattr(self, f"block{i + 1}")(x if i == 0 else F.max_pool2d(x, 2))
            outs.append(x)
        return outs


class ReconDecoder(nn.Module):
    """METHOD 2.1 decoder: no skips, linear output."""

    def __init__(self, w, cout):
        super().__init__()
        self.up1, self.db1 = up_block(8 * w, 8 * w), double_block(8 * w, 8 * w, 4 * w)
        self.up2, self.db2 = up_block(4 * w, 4 * w), double_block(4 * w, 4 * w, 2 * w)
        self.up3, self.db3 = up_block(2 * w, 2 * w), double_block(2 * w, 2 * w, w)
        self.up4, self.db4 = up_block(w, w), double_block(w, w, w)
        self.fin_out = nn.Sequential(nn.Conv2d(w, cout, 3, padding=1))

    def forward(self, x):
        for i in range(1, 5):
            x = getattr(self, f"db{i}")(getattr(self, f"up{i}")(x))
        return self.fin_out(x)


class Recon(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.encoder, self.decoder = Encoder(3, w, 5), ReconDecoder(w, 3)

    def forward(self, x):
        return self.decoder(self.encoder(x)[-1])


class SegDecoder(nn.Module):
    """METHOD 2.2 decoder: U-Net, cat([upsampled, skip], 1)."""

    def __init__(self, w, cout):
        super().__init__()
        self.up_b, self.db_b = up_block(8 * w, 8 * w), double_block(16 * w, 8 * w, 8 * w)
        self.up1, self.db1 = up_block(8 * w, 4 * w), double_block(12 * w, 4 * w, 4 * w)
        self.up2, self.db2 = up_block(4 * w, 2 * w), double_block(6 * w, 2 * w, 2 * w)
        self.up3, self.db3 = up_block(2 * w, w), double_block(3 * w, w, w)
        self.up4, self.db4 = up_block(w, w), double_block(2 * w, w, w)
        self.fin_out = nn.Sequential(nn.Conv2d(w, cout, 3, padding=1))

    def forward(self, b1, b2, b3, b4, b5, b6):
        x = self.db_b(torch.cat([self.up_b(b6), b5], 1))
        for i, skip in zip(range(1, 5), [b4, b3, b2, b1]):
            x = getattr(self, f"db{i}")(torch.cat([getattr(self, f"up{i}")(x), skip], 1))
        return self.fin_out(x)


class Discr(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.encoder_segment, self.decoder_segment = Encoder(6, w, 6), SegDecoder(w, 2)

    def forward(self, x):
        return self.decoder_segment(*self.encoder_segment(x))


class Nets(nn.Module):
    """Container only, so that state-dict names start with recon. / discr."""

    def __init__(self, wr, ws):
        super().__init__()
        self.recon, self.discr = Recon(wr), Discr(ws)


def init_weights(m):  # METHOD 2.3; conv biases keep PyTorch's default init
    if isinstance(m, nn.Conv2d):
        m.weight.data.normal_(0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def ssim(img1, img2, window_size=11, sigma=1.5):
    """METHOD 3.1: mean SSIM, Gaussian window, zero padding, range L from img1."""
    L = (255 if img1.max() > 128 else 1) - (-1 if img1.min() < -0.5 else 0)
    C1, C2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    x = torch.arange(window_size, dtype=torch.float32) - window_size // 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    c = img1.shape[1]
    win = (g[:, None] @ g[None, :]).expand(c, 1, window_size, window_size).contiguous().to(img1)
    conv = lambda t: F.conv2d(t, win, padding=window_size // 2, groups=c)  # noqa: E731
    mu1, mu2 = conv(img1), conv(img2)
    s11 = conv(img1 * img1) - mu1 * mu1
    s22 = conv(img2 * img2) - mu2 * mu2
    s12 = conv(img1 * img2) - mu1 * mu2
    num = (2 * mu1 * mu2 + C1) * (2 * s12 + C2)
    den = (mu1 * mu1 + mu2 * mu2 + C1) * (s11 + s22 + C2)
    return (num / den).mean()


def focal_loss(logits, mask, gamma=2.0, smooth=1e-5):
    """METHOD 3.1: focal loss on softmax probabilities, one-hot target clamped, mean over B*H*W."""
    p = torch.softmax(logits, 1)
    onehot = torch.cat([1 - mask, mask], 1).clamp(smooth, 1 - smooth)
    pt = (onehot * p).sum(1) + smooth
    return (-(1 - pt) ** gamma * pt.log()).mean()


def augment(gen, clean, empty=()):
    """Replace one random axis-aligned rectangle per image by U[0,1) noise; returns (aug, mask)."""
    aug, mask = clean.clone(), torch.zeros(clean.shape[0], 1, *clean.shape[2:])
    noise = torch.rand(clean.shape, generator=gen)
    for i in range(clean.shape[0]):
        h, w = (int(v) for v in torch.randint(4, 17, (2,), generator=gen))
        y0 = int(torch.randint(0, clean.shape[2] - h + 1, (1,), generator=gen))
        x0 = int(torch.randint(0, clean.shape[3] - w + 1, (1,), generator=gen))
        if i in empty:
            continue
        aug[i, :, y0:y0 + h, x0:x0 + w] = noise[i, :, y0:y0 + h, x0:x0 + w]
        mask[i, :, y0:y0 + h, x0:x0 + w] = 1
    return aug, mask


def state(prefix, nets):
    return [(f"{prefix}/{n}", t.detach().clone()) for n, t in nets.state_dict().items()
            if not n.endswith("num_batches_tracked")]


def nparams(m):
    return sum(p.numel() for p in m.parameters())


def step_forward(nets, x_clean, x_aug, y_aug, y_mask):
    """METHOD 3.2 forward: R (train) on X, R (eval, no grad) on Y, S (train) on [y_aug, rec_y]."""
    R, S = nets.recon, nets.discr
    R.train()
    rec_x = R(x_aug)
    l2, l_ssim = F.mse_loss(rec_x, x_clean), 1 - ssim(rec_x, x_clean)
    R.eval()
    with torch.no_grad():
        rec_y = R(y_aug)
    R.train()
    S.train()
    logits = S(torch.cat([y_aug, rec_y], 1))
    l_focal = focal_loss(logits, y_mask)
    return dict(loss_l2=l2, loss_ssim=l_ssim, loss_focal=l_focal, loss_total=l2 + l_ssim + l_focal,
                rec_x=rec_x, rec_y=rec_y, logits=logits)


def main():
    torch.set_num_threads(1)  # deterministic summation order
    assert nparams(Recon(128)) == 69_048_579 and nparams(Discr(64)) == 28_374_146
    torch.manual_seed(INIT_SEED)
    nets = Nets(W_R, W_S)
    nets.apply(init_weights)
    nets64 = copy.deepcopy(nets).double()  # for the float64 check of step 0
    R, S = nets.recon, nets.discr
    print(f"params: R(w={W_R}) {nparams(R)}, S(w={W_S}) {nparams(S)}")
    opt_r = torch.optim.Adam(R.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    opt_s = torch.optim.Adam(S.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    gen = torch.Generator().manual_seed(DATA_SEED)
    tensors = state("init", nets)
    bn_biases = {f"{n}.{i}.bias" for n, m in nets.named_modules() if isinstance(m, nn.Sequential)
                 for i in range(len(m) - 1)
                 if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], nn.BatchNorm2d)}
    for k in range(STEPS):
        x_clean = torch.rand(B, 3, H, H, generator=gen)
        x_aug, _ = augment(gen, x_clean)
        y_clean = torch.rand(B, 3, H, H, generator=gen)
        y_aug, y_mask = augment(gen, y_clean, empty=(1,) if k == 0 else ())  # one empty mask
        assert y_mask.sum() > 0
        batch = dict(x_clean=x_clean, x_aug=x_aug, y_aug=y_aug, y_mask=y_mask)
        out = step_forward(nets, **batch)
        opt_r.zero_grad(set_to_none=False)
        opt_s.zero_grad(set_to_none=False)
        out["loss_total"].backward()
        p = f"step{k}/"
        tensors += [(p + n, v) for n, v in batch.items()]
        tensors += [(p + n, out[n].reshape(1)) for n in LOSSES]
        if k == 0:
            tensors += [(p + n, out[n]) for n in ["rec_x", "rec_y", "logits"]]
            grads = [(n, q.grad.detach().clone()) for n, q in nets.named_parameters()]
            tensors += [(f"{p}grad/{n}", g) for n, g in grads]
            cancel = max(float(g.abs().max()) for n, g in grads if n in bn_biases)
            other = [float(g.abs().max()) for n, g in grads if n not in bn_biases]
            print(f"step0: {len(bn_biases)} BN-cancelled conv biases, max |grad| {cancel:.3g}; "
                  f"other parameters' max |grad| in [{min(other):.3g}, {max(other):.3g}]")
            out64 = step_forward(nets64, **{n: v.double() for n, v in batch.items()})
            out64["loss_total"].backward()
            err = {"recon": 0.0, "discr": 0.0}
            for (n, g), q in zip(grads, nets64.parameters()):
                if n not in bn_biases:
                    e = float((g.double() - q.grad).abs().max() / q.grad.abs().max())
                    err[n.split(".")[0]] = max(err[n.split(".")[0]], e)
            print(f"step0: float32 vs float64 gradients, worst max|diff|/max|grad| over a tensor "
                  f"(BN-cancelled biases excluded): R {err['recon']:.2g}, S {err['discr']:.2g}")
        opt_r.step()
        opt_s.step()
        if k == 0:
            tensors += state("step0/after", nets)
        print(f"step{k}: " + " ".join(f"{n[5:]} {out[n].item():.6f}" for n in LOSSES))
    tensors += state("final", nets)
    for n, t in tensors:
        assert t.dtype == torch.float32 and torch.isfinite(t).all(), n
    assert len({n for n, _ in tensors}) == len(tensors), "duplicate tensor name"
    cafx.write(OUT, tensors)
    print(f"wrote {len(tensors)} tensors to {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
