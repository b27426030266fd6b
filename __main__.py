"""`python -m infertop`: the same as the `infertop` console script.

The repository root is the `infertop` package once installed (pyproject.toml maps it), with
`engine/` and `tui/` as `infertop.engine` and `infertop.tui`; this is its only module.
"""

import sys

from infertop.tui.cli import main

sys.exit(main())
