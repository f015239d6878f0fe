"""rnncount: recurrent cells written from scratch, proven equal to torch.nn, and the counting experiment.

The names below are imported on first use (PEP 562), so that `import rnncount` does not import torch: the
rnncount program (rnncount.__main__) starts without it and can answer Ctrl-C during torch's import in one line.
`from rnncount import LSTM` and `rnncount.LSTM` work as with eager imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the names are, for readers, type checkers and the docs' API pages (never run)
    from .cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
    from .layers import GRU, LSTM, RNN, SLSTM, MinGRU, MinLSTM, RecurrentLayer, scan
    from .modern import MinGRUCell, MinLSTMCell, SLSTMCell

__version__ = "0.1.0"

# each public name -> the module that defines it
_HOMES = {"LSTMCell": "cells", "GRUCell": "cells", "RNNCell": "cells", "RecurrentCell": "cells",
          "LSTM": "layers", "GRU": "layers", "RNN": "layers", "RecurrentLayer": "layers", "scan": "layers",
          "MinGRUCell": "modern", "MinLSTMCell": "modern", "SLSTMCell": "modern",
          "MinGRU": "layers", "MinLSTM": "layers", "SLSTM": "layers"}

__all__ = list(_HOMES)


def __getattr__(name: str):
    """A public name, imported from its module on first use (then a plain attribute)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
