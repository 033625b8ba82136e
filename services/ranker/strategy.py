"""Which relation paths a ranker's prompts show (the ablations compare them); a name only, no torch here.

`none` shows no relations (LlamaRec); `shortest` prefers short paths, as the paper's code does
without its module; `preference` uses the trained preference module; `untrained-preference` the
module at its random initialisation, which is what the paper's code actually ran.
"""

from __future__ import annotations

from typing import Literal

PathStrategy = Literal["none", "shortest", "preference", "untrained-preference"]
PREFERENCE_STRATEGIES: tuple[PathStrategy, ...] = ("preference", "untrained-preference")
