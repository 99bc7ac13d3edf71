#!/usr/bin/env python3
"""Where a program's heap allocations come from, from a valgrind DHAT profile.

    valgrind --tool=dhat --dhat-out-file=dhat.json PROGRAM ARGS...
    python3 scripts/alloc-sites.py dhat.json [DIVISOR]

Groups every allocation under the first frame of its stack that is not allocator
or container glue (`alloc::`, `core::`, `hashbrown`, `serde_json` internals, ...)
and prints the counts, largest first, divided by DIVISOR (the number of requests
the program made, to read them per request). BENCHMARKS.md ("Per-request budget")
shows it on the allocation test.
"""
import collections
import json
import re
import sys

GLUE = re.compile(
    r"^(alloc|core|std|hashbrown|__rust|<alloc|<core|<std|<T as|<str as|<\[T\]|<String|"
    r"<Vec|<u8 as|bytes::|<bytes|http::header::map|http::extensions|<http::|http::header|"
    r"serde_core|<serde_core|serde_json|<serde_json|<&mut serde_json|smallvec|<smallvec|"
    r"tracing_subscriber::fmt::format::Writer|<&mut W|vg_|malloc|realloc|calloc|"
    r"posix_memalign|try_allocate|allocate|do_reserve|grow|finish_grow|reserve|"
    r"with_capacity|to_vec|to_owned|prepare_resize|resize|from_elem|clone|<[a-z_]+ as )"
)


def frame_name(text):
    text = re.sub(r"^0x[0-9A-Fa-f]+: ", "", text)
    return re.sub(r" \(.*$", "", text)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    profile = json.load(open(sys.argv[1]))
    divisor = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    frames = profile["ftbl"]
    sites = collections.Counter()
    for point in profile["pps"]:
        names = [frame_name(frames[i]) for i in point["fs"]]
        at = next((k for k, n in enumerate(names) if not GLUE.match(n)), len(names) - 1)
        via = names[at - 1] if at > 0 else ""
        sites[f"{names[at]}   [via {via}]"] += point["tbk"]
    total = sum(sites.values())
    print(f"{total / divisor:.1f} allocations (total blocks / {divisor:g})")
    for site, count in sites.most_common(60):
        if count / divisor >= 0.01:
            print(f"{count / divisor:8.2f}  {site[:200]}")


if __name__ == "__main__":
    main()
