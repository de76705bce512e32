#!/usr/bin/python3
"""Time the classic serializer workload with Python's serializers.

The workload is a mapping of N entries str(k) -> -k (default N = 100,000). Each
serializer encodes the mapping and decodes its own output; the median of RUNS runs
is printed for each, in milliseconds, one line per serializer:

    name<TAB>encode_ms<TAB>decode_ms<TAB>bytes

A serializer that is not installed is printed with "-" instead of times. The
cyclic garbage collector is off while timing, and a decoded result is released
outside the timed region, which only helps the Python side.
"""

import gc
import json
import marshal
import pickle
import statistics
import sys
import time


def load_optional(name):
    try:
        return __import__(name)
    except ImportError:
        return None


def median_ms(fn, arg, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn(arg)
        t1 = time.perf_counter()
        times.append(t1 - t0)
        del out
    return statistics.median(times) * 1000.0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    data = {str(k): -k for k in range(n)}

    simplejson = load_optional("simplejson")
    ujson = load_optional("ujson")
    proto = pickle.HIGHEST_PROTOCOL
    candidates = [
        ("python json", json.dumps, json.loads),
        ("python simplejson", simplejson and simplejson.dumps, simplejson and simplejson.loads),
        ("python ujson", ujson and ujson.dumps, ujson and ujson.loads),
        ("python marshal", marshal.dumps, marshal.loads),
        ("python pickle (protocol %d)" % proto,
         lambda obj: pickle.dumps(obj, protocol=proto), pickle.loads),
    ]

    gc.disable()
    for name, dumps, loads in candidates:
        if dumps is None:
            print("%s\t-\t-\t-" % name)
            continue
        blob = dumps(data)
        back = loads(blob)
        if back != data:
            print("%s: decoded value differs from the original" % name, file=sys.stderr)
            sys.exit(1)
        del back
        enc = median_ms(dumps, data, runs)
        dec = median_ms(loads, blob, runs)
        print("%s\t%.2f\t%.2f\t%d" % (name, enc, dec, len(blob)))
        sys.stdout.flush()
    gc.enable()


if __name__ == "__main__":
    main()
