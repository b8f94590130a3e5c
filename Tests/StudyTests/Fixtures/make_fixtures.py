"""Regenerates the derived StudyTests fixtures (gzip files, expected split hashes).

Run: /work/venv/bin/python Tests/StudyTests/Fixtures/make_fixtures.py
The gzip files are written with Python's gzip module so the Swift zlib reader is checked
against an independent writer. mtime is fixed so the bytes are reproducible.
"""
import gzip, hashlib, json, os

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "data")

for name in ["beavertails.jsonl", "xstest.csv"]:
    raw = open(os.path.join(data, name), "rb").read()
    with open(os.path.join(data, name + ".gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
            g.write(raw)

# Split expectations: key -> (sha256 bucket, train?) with bucket = first 8 bytes big-endian % 10000,
# train when bucket < 9000 (90/10). FNV-1a 64 likewise.
def sha_bucket(key):
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 10000

def fnv_bucket(key):
    h = 0xcbf29ce484222325
    for b in key.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001b3) % (1 << 64)
    return h % 10000

keys = ["how do i bake sourdough bread at home?", "what are some tips for a first marathon?",
        "how can i kill a python process?", "a", "caf\u00e9 au lait, s'il vous pla\u00eet", ""]
out = {k: {"sha256": sha_bucket(k), "fnv1a64": fnv_bucket(k),
           "sha256_hex": hashlib.sha256(k.encode()).hexdigest()} for k in keys}
json.dump(out, open(os.path.join(here, "split_expectations.json"), "w"), indent=1, sort_keys=True, ensure_ascii=False)
print(json.dumps(out, indent=1, ensure_ascii=False))

# Bootstrap CI of the median with SplitMix64 (same algorithm as Study.Bootstrap.medianCI).
MASK = (1 << 64) - 1
class SplitMix64:
    def __init__(self, seed): self.s = seed & MASK
    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

def percentile(sorted_vals, q):
    pos = q * (len(sorted_vals) - 1)
    lo = int(pos // 1); hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)

def median_ci(values, resamples, seed, level):
    rng = SplitMix64(seed); n = len(values); meds = []
    for _ in range(resamples):
        sample = sorted(values[(rng.next() * n) >> 64] for _ in range(n))
        meds.append(percentile(sample, 0.5))
    meds.sort()
    return percentile(meds, (1 - level) / 2), percentile(meds, (1 + level) / 2)

values = [0.0, 0.5, 1.25, 2.0, 2.0, 3.5, 7.0, 11.0, 0.25]
lo, hi = median_ci(values, 200, 42, 0.95)
json.dump({"values": values, "resamples": 200, "seed": 42, "level": 0.95, "lower": lo, "upper": hi},
          open(os.path.join(here, "bootstrap_expectations.json"), "w"), indent=1)
print("bootstrap", lo, hi)
