"""A part-of-speech tagger (the PyTorch tutorial's): word ids → Embedding → LSTM → Linear →
log_softmax over tags. `print(model)` shows only weight sizes; the diagram shows the path.

    fxviz examples/lstm_tagger.py:LSTMTagger
"""

import torch
import torch.nn.functional as F
from torch import nn


class LSTMTagger(nn.Module):
    def __init__(
        self,
        vocab_size: int = 1000,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        tagset: int = 17,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, batch_first=True)
        self.hidden2tag = nn.Linear(hidden_dim, tagset)

    def forward(self, sentence: torch.Tensor) -> torch.Tensor:
        embeds = self.embedding(sentence)
        lstm_out, _ = self.lstm(embeds)
        tag_space = self.hidden2tag(lstm_out)
        return F.log_softmax(tag_space, dim=-1)


def example_inputs() -> tuple[torch.Tensor]:
    """One sentence of 12 word ids."""
    return (torch.randint(0, 1000, (1, 12)),)
