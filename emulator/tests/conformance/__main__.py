"""`python -m emulator.tests.conformance [--write-known]`: replay the corpus, print the table and N/M."""
import argparse
import sys
import tempfile

from emulator.tests.conformance import suite


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m emulator.tests.conformance", description=__doc__)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument("--write-known", action="store_true",
                        help="rewrite KNOWN.json from the current mismatches (existing reasons kept, new ones pending)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conformance-") as state_dir:
        emu = suite.start_emulator(state_dir, args.time_scale)
        try:
            rows, throttled = suite.run(emu)
        finally:
            suite.stop_emulator(emu)
    print(suite.table(rows))
    print(f"emulator 429s absorbed while replaying: {throttled}")
    print(suite.summary(rows))
    known = suite.load_known()
    if args.write_known:
        suite.write_known(rows, known)
        print(f"wrote {suite.KNOWN}")
        return 0
    unlisted, stale = suite.check_known(rows, known)
    for key in unlisted:
        print("NOT IN KNOWN.json:", " | ".join(key))
    for key in stale:
        print("IN KNOWN.json BUT GONE:", " | ".join(key))
    return 1 if unlisted or stale else 0


if __name__ == "__main__":
    sys.exit(main())
