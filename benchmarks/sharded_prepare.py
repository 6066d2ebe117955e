"""Sharded preparation + merge against one run: the same cache, and what it costs.

Prepares a MIDI collection once in one run, then as N shards (``--shard I/N``, run one after
the other here; on a cluster each on its own machine) and merges them, and checks that the
merged cache equals the single run's: every table of every genre (kept files with path, name,
hash, tempo and phrase counts; dropped files with reason and detail; the phrase tables) and
the phrases themselves. Prints the times: one run, each shard, the merge, and the wall time N
machines would take (slowest shard + merge).

    nice -n 10 python benchmarks/sharded_prepare.py ../shared/data/midi/jazz --genre jazz --shards 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tables(path: Path, genre: str) -> dict:
    import numpy as np

    from midigenre.dataset import PhraseCache

    out = {}
    with PhraseCache(path) as c:
        for part, table in (("files", c.files(genre)), ("dropped", c.dropped(genre))):
            for k, v in table.items():
                out[f"{part}/{k}"] = hashlib.sha1(np.asarray(v).astype(str if v.dtype.kind in "OU" else v.dtype).tobytes()).hexdigest()
        out["phrase_file"] = hashlib.sha1(c.phrase_file(genre).tobytes()).hexdigest()
        out["phrase_index"] = hashlib.sha1(c.phrase_index(genre).tobytes()).hexdigest()
        h, n = hashlib.sha1(), c.n_phrases(genre)
        for a in range(0, n, 4096):
            h.update(np.packbits(c.phrases(genre, slice(a, min(n, a + 4096)))).tobytes())
        out["phrases"] = h.hexdigest()
        out["counts"] = {"kept": int(len(c.files(genre)["path"])), "dropped": int(len(c.dropped(genre)["path"])),
                         "phrases": int(n)}
    return out


def main() -> None:
    from midigenre.merge import merge_caches
    from midigenre.pianoroll import RollSettings
    from midigenre.prepare import prepare

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--genre", required=True)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--meter", default="strict")
    ap.add_argument("--json")
    opt = ap.parse_args()
    settings = RollSettings(meter=opt.meter)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        single = prepare(opt.sources, opt.genre, tmp / "one.h5", settings)
        t_one = time.perf_counter() - t0
        t_shards = []
        for i in range(1, opt.shards + 1):
            t0 = time.perf_counter()
            prepare(opt.sources, opt.genre, tmp / f"shard{i}.h5", settings, shard=(i, opt.shards))
            t_shards.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        (merged,) = merge_caches([tmp / f"shard{i}.h5" for i in range(1, opt.shards + 1)], tmp / "all.h5")
        t_merge = time.perf_counter() - t0
        a, b = tables(tmp / "one.h5", opt.genre), tables(tmp / "all.h5", opt.genre)
    differ = [k for k in a if a[k] != b[k]]
    print(f"{opt.genre}: {single.files_found} files; one run keeps {a['counts']['kept']} files, drops "
          f"{a['counts']['dropped']} ({dict(single.dropped)}), {a['counts']['phrases']} phrases")
    print(f"merged {opt.shards} shards: keeps {b['counts']['kept']}, drops {b['counts']['dropped']} "
          f"({dict(merged.dropped)}; {merged.cross_duplicates} duplicates found across shards), {b['counts']['phrases']} phrases")
    print("identical to the single run in every table and every phrase" if not differ else f"DIFFERENT: {differ}")
    print(f"time: one run {t_one:.1f} s; shards {', '.join(f'{t:.1f}' for t in t_shards)} s (sum {sum(t_shards):.1f} s); "
          f"merge {t_merge:.1f} s; on {opt.shards} machines ≈ {max(t_shards) + t_merge:.1f} s "
          f"({t_one / (max(t_shards) + t_merge):.2f}× the single run)")
    if opt.json:
        Path(opt.json).write_text(json.dumps({"genre": opt.genre, "files": single.files_found, "one": a["counts"],
                                              "merged": b["counts"], "identical": not differ, "t_one": t_one,
                                              "t_shards": t_shards, "t_merge": t_merge,
                                              "cross_duplicates": merged.cross_duplicates}, indent=2))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
