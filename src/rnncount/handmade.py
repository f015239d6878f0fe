"""A counter whose weights are set by hand, not trained: an LSTM whose cell state is the running count.

One LSTM unit, no recurrent weights (W_hh = 0), read out from its cell state (readout="c"):

    i = sigmoid(S)            = 1 exactly     (S = 30: 1 / (1 + e^-30) rounds to 1.0 in float32)
    f = sigmoid(S)            = 1 exactly
    g = tanh(S x)             = x exactly     (tanh(0) = 0; tanh(30) rounds to 1.0 in float32)
    c_t = f c_{t-1} + i g     = c_{t-1} + x_t = the number of 1s so far, an integer
    ŷ   = 1 · c_T + 0

Every number on the way is an integer, exact in float32 up to 2^24 (16,777,216): the LSTM can
count to any length it will be shown. h = o * tanh(c) saturates at o after a few 1s, which is why
the readout is the cell state. Used as the oracle of the tests, never as a starting point of training.
"""

from __future__ import annotations

import torch

from .model import Counter, ModelConfig

SATURATION = 30.0  # sigmoid(z) and tanh(z) round to exactly 1.0 in float32 from about z = 17 and 9.1


def handmade_lstm() -> Counter:
    """The hand-set counting LSTM (one unit, readout from c), in eval mode."""
    model = Counter(ModelConfig(cell="lstm", hidden_size=1, readout="c"))
    rnn = model.rnn
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        # rows of weight_ih / bias_ih, gate order i, f, g, o (one unit each)
        rnn.bias_ih_l0[0] = SATURATION  # input gate open
        rnn.bias_ih_l0[1] = SATURATION  # forget gate open: nothing is ever forgotten
        rnn.weight_ih_l0[2, 0] = SATURATION  # candidate g = tanh(30 x) = x
        model.head.weight.fill_(1.0)  # ŷ = c_T
    return model.eval()
