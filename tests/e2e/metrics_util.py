"""A strict parser of the Prometheus text exposition format (version 0.0.4), for the metrics
tests: every line is a HELP, a TYPE or a sample; names, labels and values follow the format's
grammar; each family is declared once, before its samples; no series appears twice; the
buckets of each histogram are cumulative, in order of `le`, end with +Inf, and +Inf equals
_count."""
import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
HELP_RE = re.compile(rf"^# HELP ({NAME}) (.*)$")
TYPE_RE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")
SAMPLE_RE = re.compile(rf"^({NAME})(\{{.*\}})? (\S+)(?: (-?\d+))?$")
LABEL_RE = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


class FormatError(AssertionError):
    pass


def parse_value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise FormatError(f"bad value {text!r} in {line!r}")
    return float(text)


def parse_labels(text, line):
    """'{a="x",b="y"}' -> (("a", "x"), ("b", "y")), checked character by character."""
    if not text:
        return ()
    body = text[1:-1]
    out = []
    pos = 0
    while pos < len(body):
        m = LABEL_RE.match(body, pos)
        if not m:
            raise FormatError(f"bad labels {text!r} in {line!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(body):
            if body[pos] != ",":
                raise FormatError(f"bad labels {text!r} in {line!r}")
            pos += 1
    names = [k for k, _ in out]
    if len(set(names)) != len(names):
        raise FormatError(f"repeated label in {line!r}")
    return tuple(out)


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and types.get(base) in ("histogram", "summary"):
            return base
    return None


def parse(text):
    """Parse an exposition; returns {(name, labels): value} and {family: type}."""
    if not text.endswith("\n"):
        raise FormatError("the exposition must end with a newline")
    types, helps, samples, seen_samples_of = {}, {}, {}, set()
    for line in text.split("\n")[:-1]:
        if line.startswith("#"):
            m = HELP_RE.match(line)
            if m:
                if m.group(1) in helps:
                    raise FormatError(f"second HELP for {m.group(1)}")
                helps[m.group(1)] = m.group(2)
                continue
            m = TYPE_RE.match(line)
            if m:
                name = m.group(1)
                if name in types:
                    raise FormatError(f"second TYPE for {name}")
                if name in seen_samples_of:
                    raise FormatError(f"TYPE for {name} after its samples")
                types[name] = m.group(2)
                continue
            raise FormatError(f"bad comment line {line!r}")
        m = SAMPLE_RE.match(line)
        if not m:
            raise FormatError(f"bad sample line {line!r}")
        name, labels = m.group(1), parse_labels(m.group(2), line)
        fam = family_of(name, types)
        if fam is None:
            raise FormatError(f"sample {name} without a TYPE before it")
        seen_samples_of.add(fam)
        key = (name, tuple(sorted(labels)))
        if key in samples:
            raise FormatError(f"series {key} twice")
        samples[key] = parse_value(m.group(3), line)
    for fam, t in types.items():
        if fam not in helps:
            raise FormatError(f"{fam} has no HELP")
        if t == "counter" and not fam.endswith("_total"):
            raise FormatError(f"counter {fam} does not end in _total")
        if t == "histogram":
            check_histogram(fam, samples)
    for (name, _), v in samples.items():
        if types.get(family_of(name, types)) == "counter" and (v < 0 or math.isnan(v)):
            raise FormatError(f"counter {name} is {v}")
    return samples, types


def check_histogram(fam, samples):
    groups = {}
    for (name, labels), v in samples.items():
        if name == fam + "_bucket":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            le = dict(labels).get("le")
            if le is None:
                raise FormatError(f"{fam} bucket without le")
            groups.setdefault(rest, []).append((parse_value(le, fam), v))
    if not groups:
        raise FormatError(f"histogram {fam} has no buckets")
    for rest, buckets in groups.items():
        buckets.sort()
        if buckets[-1][0] != math.inf:
            raise FormatError(f"{fam}{rest} has no +Inf bucket")
        counts = [v for _, v in buckets]
        if counts != sorted(counts):
            raise FormatError(f"{fam}{rest} buckets are not cumulative: {buckets}")
        count = samples.get((fam + "_count", rest))
        if count is None or (fam + "_sum", rest) not in samples:
            raise FormatError(f"{fam}{rest} lacks _count or _sum")
        if count != buckets[-1][1]:
            raise FormatError(f"{fam}{rest}: +Inf {buckets[-1][1]} != _count {count}")


def value(samples, name, **labels):
    """The value of one series (0 must be present: a missing series is an error)."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        raise AssertionError(f"no series {name}{labels}")
    return samples[key]


def scrape_ctl(server):
    r = server.ctl("metrics")
    return parse(r.stdout)[0]
