#!/usr/bin/env python
"""Zip the Elastic Beanstalk source bundle: deploy/elastic-beanstalk naming IMAGE_URI.

Usage: python scripts/eb_bundle.py IMAGE_URI BUNDLE_ZIP

Elastic Beanstalk reads Dockerrun.aws.json and .ebextensions/*.config from the root of the
zip, so they go there; Dockerrun.aws.json's Image.Name (a placeholder in the repository)
becomes IMAGE_URI, e.g. <registry>/mlb-height:1.0 as `make deploy` pushed it. Standard
library only (``make eb-bundle`` runs it before any virtualenv exists).
"""

import json
import sys
import zipfile
from pathlib import Path

BUNDLE_DIR = Path(__file__).resolve().parent.parent / "deploy" / "elastic-beanstalk"
DOCKERRUN = "Dockerrun.aws.json"


def bundle(image_uri: str, destination: Path) -> list[str]:
    """Write the source bundle naming *image_uri* to *destination*; return its members."""
    dockerrun = json.loads((BUNDLE_DIR / DOCKERRUN).read_text(encoding="utf-8"))
    dockerrun["Image"]["Name"] = image_uri
    extensions = sorted(p for p in (BUNDLE_DIR / ".ebextensions").glob("*.config"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(DOCKERRUN, json.dumps(dockerrun, indent=2) + "\n")
        for path in extensions:
            archive.write(path, path.relative_to(BUNDLE_DIR).as_posix())
        return archive.namelist()


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    image_uri, destination = sys.argv[1].strip(), Path(sys.argv[2])
    if not image_uri or any(c in image_uri for c in "<> ") or image_uri.startswith("-"):
        sys.exit(f"Error: {image_uri!r} is not an image (e.g. <registry>/mlb-height:1.0).")
    members = bundle(image_uri, destination)
    print(f"{destination}: {', '.join(members)} (image {image_uri})")


if __name__ == "__main__":
    main()
