"""The counter: a recurrent layer read out by one linear unit, the predicted number of 1s.

    h_T  = layer(x_1 .. x_T)          the last step's hidden state (each sequence's own last step)
    ŷ    = w · h_T + b                one output, the count

readout="c" (LSTM, sLSTM) reads the cell state instead, ŷ = w · c_T + b: c is not squashed by a tanh,
so it can hold a count of any size (see rnncount.handmade). every_step=True gives ŷ_t for every t.

Defaults reproduce the counting reference: its reset-before GRU (torch.nn.GRU is reset-after:
pass reset_after=True for that form) and its initialisation for each cell (rnncount.init).
A cell name picks a layer and its variant switches (VARIANTS); recurrent_dropout and zoneout
apply to any of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import Tensor, nn

from ._checks import check_finite, check_positive_int, check_probability
from .layers import GRU, LSTM, RNN, SLSTM, MinGRU, MinLSTM, RecurrentLayer

VARIANTS = {  # cell name -> the layer and its switches (rnncount.cells)
    "lstm": (LSTM, {}),
    "gru": (GRU, {}),
    "rnn": (RNN, {}),
    "peephole-lstm": (LSTM, {"peephole": True}),
    "cifg-lstm": (LSTM, {"coupled": True}),
    "layernorm-lstm": (LSTM, {"layer_norm": True}),
    "layernorm-gru": (GRU, {"layer_norm": True}),
    "mingru": (MinGRU, {}),  # rnncount.modern: Feng et al. 2024, parallel scan
    "minlstm": (MinLSTM, {}),
    "unnormalized-minlstm": (MinLSTM, {"normalize": False}),  # without f/(f+i), i/(f+i)
    "slstm": (SLSTM, {}),  # Beck et al. 2024 (xLSTM)
}
CELLS = tuple(VARIANTS)


def family(cell: str) -> str:
    """The plain cell a name builds on: 'peephole-lstm' -> 'lstm', 'layernorm-gru' -> 'gru'."""
    return VARIANTS[cell][0].__name__.lower()


READOUTS = ("h", "c")
CELL_STATE = ("lstm", "slstm")  # families with a cell state c, for readout="c"
FORGET_GATE = ("lstm", "slstm", "minlstm")  # families with a forget gate, for forget_bias
MASKED = ("lstm", "gru", "rnn")  # families with recurrent dropout and zoneout
PARALLEL = ("mingru", "minlstm")  # families without recurrent weights W_hh, trained with the parallel scan


@dataclass
class ModelConfig:
    """Everything needed to rebuild a Counter (saved in every checkpoint)."""

    cell: str = "lstm"  # one of CELLS
    hidden_size: int = 20
    num_layers: int = 1
    reset_after: bool = False  # GRU form; False is the reference's (Cho et al. 2014), True is torch.nn.GRU's
    nonlinearity: str = "tanh"  # RNN only
    init: str = "reference"  # see rnncount.init
    recurrent_dropout: float = 0.0  # Gal & Ghahramani's, one mask per sequence (training only)
    zoneout: float = 0.0  # Krueger et al.'s, on h (and c)
    forget_bias: float | None = None  # LSTM, sLSTM, minLSTM: the forget gate's initial bias (None: the init scheme's)
    readout: str = "h"  # what the head reads: "h" (h_T, the reference) or "c" (LSTM, sLSTM: the cell state c_T)
    num_heads: int = 1  # sLSTM only: blocks of its block-diagonal recurrent matrices

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")
        if family(self.cell) not in CELL_STATE and self.readout == "c":
            raise ValueError(f"readout='c' applies to the LSTM (and its variants) and the sLSTM only, "
                             f"not the {self.cell}")
        if family(self.cell) not in FORGET_GATE and self.forget_bias is not None:
            raise ValueError(f"forget_bias applies to the LSTM (and its variants), the sLSTM and the minLSTM only, "
                             f"not the {self.cell}")
        if family(self.cell) != "gru" and self.reset_after:
            raise ValueError(f"reset_after applies to the GRU (and its variants) only, not the {self.cell}")
        if family(self.cell) != "rnn" and self.nonlinearity != "tanh":
            raise ValueError(f"nonlinearity={self.nonlinearity!r} applies to the RNN only, not the {self.cell}")
        if family(self.cell) not in MASKED and (self.recurrent_dropout or self.zoneout):
            raise ValueError(f"recurrent_dropout and zoneout are not implemented for the {self.cell}")
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_int("num_heads", self.num_heads)
        if self.num_heads != 1 and family(self.cell) != "slstm":
            raise ValueError(f"num_heads applies to the sLSTM only, not the {self.cell}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size={self.hidden_size} must be a multiple of num_heads={self.num_heads}")
        check_positive_int("num_layers", self.num_layers)
        check_probability("recurrent_dropout", self.recurrent_dropout)
        check_probability("zoneout", self.zoneout)
        if self.forget_bias is not None:
            check_finite("forget_bias", self.forget_bias)

    def to_dict(self) -> dict:
        return asdict(self)


FORMS = {"reset_after": "gru", "nonlinearity": "rnn"}  # settings that choose the form of one family's cell


def without_other_forms(cell: str, settings: dict) -> dict:
    """settings less the FORMS of families other than the cell's (which ModelConfig refuses for it)."""
    return {name: value for name, value in settings.items() if FORMS.get(name, family(cell)) == family(cell)}


def saved_config(config: dict) -> ModelConfig:
    """A model file's configuration as a ModelConfig. Files written before ModelConfig refused reset_after and
    nonlinearity for the cells without them may hold them; they never changed such a model, so they are dropped."""
    cell = config.get("cell", "lstm")
    return ModelConfig(**(without_other_forms(cell, config) if cell in CELLS else config))


def make_layer(config: ModelConfig, input_size: int = 1) -> RecurrentLayer:
    """The recurrent layer a config names, batch_first."""
    layer, switches = VARIANTS[config.cell]
    options = dict(num_layers=config.num_layers, batch_first=True, init=config.init,
                   recurrent_dropout=config.recurrent_dropout, zoneout=config.zoneout, **switches)
    if layer in (LSTM, SLSTM, MinLSTM):
        options["forget_bias"] = config.forget_bias
    if layer is SLSTM:
        options["num_heads"] = config.num_heads
    if layer is GRU:
        options["reset_after"] = config.reset_after
    if layer is RNN:
        options["nonlinearity"] = config.nonlinearity
    return layer(input_size, config.hidden_size, **options)


class Counter(nn.Module):
    """A recurrent layer and a linear head on its last hidden state.

    Example:
        >>> model = Counter(ModelConfig(cell="gru"))
        >>> model(torch.ones(16, 20, 1))            # (16,), predicted counts
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config or ModelConfig()
        self.rnn = make_layer(self.config)
        self.head = nn.Linear(self.rnn.state_sizes[0], 1)  # nn.Linear's default init, as in the reference

    def forward(self, inputs: Tensor, lengths: Tensor | None = None, every_step: bool = False) -> Tensor:
        """inputs (B, T, 1), lengths (B,) or None when all are T -> (B,) predicted counts.

        every_step=True -> (B, T): the count predicted after each step (zeros past a sequence's end).
        """
        if every_step:
            return self.head(self.features(inputs, lengths)).squeeze(-1)  # (B, T, H) -> (B, T)
        _, state = self.rnn(inputs, lengths=lengths)
        state = state if isinstance(state, tuple) else (state,)  # (h_n,) or (h_n, c_n), each (L, B, H)
        read = state[1] if self.config.readout == "c" else state[0]
        return self.head(read[-1]).squeeze(-1)  # last layer's h_T (or c_T): (B, H) -> (B,)

    def features(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """What the head reads at every step: the last layer's h_t (or c_t), (B, T, H), zeros past the end."""
        if self.config.readout == "c":
            return self.rnn(inputs, lengths=lengths, return_cell_states=True)[2]
        return self.rnn(inputs, lengths=lengths)[0]
