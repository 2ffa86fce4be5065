"""Write pitchers.csv: each MLB player's Height, Weight and Age, and whether he pitches.

    python examples/pitcher-classifier/make_data.py [SOURCE [DESTINATION]]

SOURCE is the project's htwtmlb.csv (``make data`` fetches it), DESTINATION pitchers.csv
beside it. ``Pitcher`` is "yes" for a Starting_Pitcher or a Relief_Pitcher, else "no". The
cells are copied as text, so the same source always gives the same bytes (and sha256).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "htwtmlb.csv"
COLUMNS = ("Height", "Weight", "Age")
PITCHING = ("Starting_Pitcher", "Relief_Pitcher")


def make_data(source: Path, destination: Path) -> int:
    """Write *source*'s players to *destination* with their ``Pitcher`` label; return the rows."""
    with source.open(newline="", encoding="utf-8") as given:
        players = list(csv.DictReader(given))
    with destination.open("w", newline="", encoding="utf-8") as written:
        out = csv.writer(written, lineterminator="\n")
        out.writerow((*COLUMNS, "Pitcher"))
        for player in players:
            label = "yes" if player["Position"] in PITCHING else "no"
            out.writerow((*(player[name] for name in COLUMNS), label))
    return len(players)


def main(arguments: list[str]) -> None:
    """Parse SOURCE and DESTINATION, write the file and say where."""
    source = Path(arguments[0]) if arguments else SOURCE
    destination = Path(arguments[1]) if len(arguments) > 1 else source.with_name("pitchers.csv")
    try:
        rows = make_data(source, destination)
    except KeyError as missing:
        raise SystemExit(f"{source} has no column {missing}: is it htwtmlb.csv?") from None
    except (OSError, csv.Error) as exc:
        raise SystemExit(f"Cannot make {destination} from {source}: {exc}") from None
    print(f"Wrote {rows} players to {destination}")


if __name__ == "__main__":
    main(sys.argv[1:])
