"""Speed and agreement of the torch CLAP front end (`biovita_nb.frontend.ClapFrontEnd`) against
transformers' `ClapFeatureExtractor`, on 64 clips of 10 s at 48 kHz (noise + synthetic calls),
BioVITA settings (rand_trunc / repeatpad, 50-14,000 Hz). Both measured in this one run.

    python bench/clap_frontend.py [--threads 2] [--clips 64] [--reps 3] [--device cpu]
"""
import argparse, time
import numpy as np
import torch
from biovita_nb.frontend import ClapFrontEnd, ClapFrontEndConfig
from biovita_nb.testing import synthetic_call
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    clips = [synthetic_call(seed=i, f0=800 + 60 * i, noise=float(10 ** rng.uniform(-3.5, -1.5))) if i % 2 else
             (0.05 * rng.standard_normal(480_000)).astype(np.float32) for i in range(a.clips)]
    cfg = ClapFrontEndConfig()
    fe = cfg.feature_extractor()
    front = ClapFrontEnd(cfg).to(a.device)
    front(clips[:2])                                     # warm-up

    def best(f):
        ts = []
        for _ in range(a.reps):
            if a.device.startswith("cuda"): torch.cuda.synchronize()
            t = time.perf_counter(); out = f()
            if a.device.startswith("cuda"): torch.cuda.synchronize()
            ts.append(time.perf_counter() - t)
        return min(ts), out
    t_hf, hf = best(lambda: fe(clips, sampling_rate=48_000, return_tensors="pt")["input_features"])
    t_torch, ours = best(lambda: front(clips)["input_features"])
    diff = (ours.cpu() - hf).abs()
    print(f"clips: {a.clips} x 10 s at 48 kHz, torch threads: {a.threads}, device: {a.device}, best of {a.reps}")
    print(f"ClapFeatureExtractor: {t_hf:.3f} s ({1000 * t_hf / a.clips:.1f} ms/clip)")
    print(f"ClapFrontEnd (torch): {t_torch:.3f} s ({1000 * t_torch / a.clips:.1f} ms/clip)")
    print(f"speed ratio (extractor / torch): {t_hf / t_torch:.1f}x")
    print(f"max |torch - extractor|: {diff.max().item():.2e} dB; mean {diff.mean().item():.2e} dB; "
          f"feature range {hf.min().item():.1f} .. {hf.max().item():.1f} dB")

if __name__ == "__main__":
    main()
