"""Add up the unit (meson) and end-to-end (pytest) results into one closing line."""
import json
import sys
import xml.etree.ElementTree as ET

build, unit_rc, e2e_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
passed = failed = skipped = 0
try:
    with open(f"{build}/meson-logs/testlog.json") as f:
        for line in f:
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
except FileNotFoundError:
    failed += 1
try:
    root = ET.parse(f"{build}/e2e-junit.xml").getroot()
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        f_ = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        s_ = int(suite.get("skipped", 0))
        passed += tests - f_ - s_
        failed += f_
        skipped += s_
except (FileNotFoundError, ET.ParseError):
    failed += 1
if (unit_rc != 0 or e2e_rc != 0) and failed == 0:
    failed = 1  # a runner failed without a counted test failing
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
