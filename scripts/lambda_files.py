"""Print the files the Lambda package ships: the handler's import closure inside cookbook.

    python scripts/lambda_files.py            # one path per line, relative to the project

The closure is found by following the imports (the standard library's modulefinder), so a
module the handler starts to import is packaged without anyone editing a list; the package
ships every ``__init__.py`` on the way and all of ``cookbook.core`` (the model core the
handler serves from). import-linter checks that none of it imports a third-party library.
"""

from __future__ import annotations

import sys
from modulefinder import ModuleFinder
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "cookbook" / "web" / "lambda_handler.py"


def lambda_files() -> list[str]:
    """Return the project files the Lambda handler needs, sorted, relative to the project."""
    finder = ModuleFinder(path=[str(ROOT)])
    finder.run_script(str(HANDLER))
    files = {HANDLER}
    for name, module in finder.modules.items():
        if (name == "cookbook" or name.startswith("cookbook.")) and module.__file__:
            files.add(Path(module.__file__).resolve())
    files.update((ROOT / "cookbook" / "core").glob("*.py"))
    for path in list(files):  # the packages on the way: cookbook/, cookbook/web/
        for parent in path.parents:
            if parent == ROOT:
                break
            files.add(parent / "__init__.py")
    return sorted(path.relative_to(ROOT).as_posix() for path in files)


if __name__ == "__main__":
    sys.stdout.write("".join(f"{name}\n" for name in lambda_files()))
