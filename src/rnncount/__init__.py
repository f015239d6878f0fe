"""rnncount: recurrent cells written from scratch, proven equal to torch.nn, and the counting experiment."""

from .cells import GRUCell, LSTMCell, RecurrentCell, RNNCell
from .layers import GRU, LSTM, RNN, SLSTM, MinGRU, MinLSTM, RecurrentLayer, scan
from .modern import MinGRUCell, MinLSTMCell, SLSTMCell

__version__ = "0.1.0"

__all__ = ["LSTMCell", "GRUCell", "RNNCell", "RecurrentCell", "LSTM", "GRU", "RNN", "RecurrentLayer", "scan",
           "MinGRUCell", "MinLSTMCell", "SLSTMCell", "MinGRU", "MinLSTM", "SLSTM"]
