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
