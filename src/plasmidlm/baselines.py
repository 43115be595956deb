"""Baselines on the same splits and test windows: canonical k-mer frequencies (the k-mer and composition
baselines) with logistic regression, a model's frozen embeddings (mean-pooled with logistic regression, per token
with a 1D CNN), and the majority class. The one-hot CNN trained from scratch is in `cnn`."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plasmidlm import PlasmidlmError
from plasmidlm.kmers import OTHER, base_codes, place_values


def canonical_kmer_index(k: int) -> np.ndarray:
    """Map every k-mer index (`kmers.place_values`) to the column of its canonical (strand-merged) k-mer."""
    kmers = np.arange(4**k)
    digits = (kmers[:, None] // place_values(k)) % 4
    reverse_complement = ((3 - digits[:, ::-1]) * place_values(k)).sum(axis=1)
    canonical = np.minimum(kmers, reverse_complement)
    _, columns = np.unique(canonical, return_inverse=True)
    return columns


def kmer_frequencies(sequences, k: int) -> np.ndarray:
    """Frequencies of canonical k-mers per sequence (float32); k-mers containing a non-ACGT base are ignored."""
    columns = canonical_kmer_index(k)
    n_columns = int(columns.max()) + 1
    weights = place_values(k)
    out = np.zeros((len(sequences), n_columns), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = base_codes(sequence)
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows != OTHER).all(axis=1)
        counts = np.bincount(columns[windows[valid] @ weights], minlength=n_columns)
        out[row] = counts / max(counts.sum(), 1)
    return out


def fit_logistic(features: np.ndarray, labels, C: float, seed: int):
    """Standardised features + multinomial logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
    return model.fit(features, labels)


def logistic_proba(model, features: np.ndarray, classes: list[str]) -> np.ndarray:
    """Probabilities in the order of `classes`."""
    proba = model.predict_proba(features)
    return proba[:, [list(model.classes_).index(name) for name in classes]]


def majority_proba(train_labels, n_windows: int, classes: list[str]) -> np.ndarray:
    """Always predict the most frequent training class (a line that shows what chance looks like)."""
    values, counts = np.unique(np.asarray(train_labels), return_counts=True)
    proba = np.zeros((n_windows, len(classes)))
    proba[:, classes.index(values[counts.argmax()])] = 1.0
    return proba


def load_encoder(name_or_path, trust_remote_code: bool = False, kmer: int | None = None, kmer_stride: int = 1):
    """The body of a model directory or hub id (no head), its tokenizer and window metadata.

    Window metadata (k-mer text) comes from a plasmidlm-trained model's config, else from `kmer`. A model
    with its own code loads only with `trust_remote_code`.
    """
    from transformers import AutoModel, AutoTokenizer

    from plasmidlm.evaluate import default_device
    from plasmidlm.model import METADATA_KEY, ensure_pad_token, load_config

    config = load_config(name_or_path, trust_remote_code, "set model.trust_remote_code (of the experiment) or "
                                                          "baselines.embeddings.trust_remote_code: true")
    try:
        encoder = AutoModel.from_pretrained(name_or_path, config=config, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:  # not a model directory, hub id unreachable
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PlasmidlmError(f"config baselines.embeddings.model: cannot load {name_or_path}: {reason}") from None
    encoder = encoder.to(default_device()).eval()
    ensure_pad_token(encoder, tokenizer)
    metadata = getattr(encoder.config, METADATA_KEY, None) or {"kmer": kmer, "kmer_stride": kmer_stride}
    return encoder, tokenizer, metadata


def encoder_states(encoder, tokenizer, metadata: dict, sequences, *, first_row: int = 0):
    """Last hidden state of every token of one batch of windows (float32 tensor [windows, tokens, hidden] on the
    encoder's device, zero at padding) and the padding mask (bool tensor [windows, tokens])."""
    import torch

    from plasmidlm.evaluate import check_token_counts
    from plasmidlm.model import forward_input_names, last_hidden_state, token_limit
    from plasmidlm.tokenize import encode

    device = next(encoder.parameters()).device
    limit, source = token_limit(encoder.config, tokenizer)
    batch = encode(tokenizer, list(sequences), kmer=metadata.get("kmer"), stride=metadata.get("kmer_stride", 1))
    check_token_counts(batch["attention_mask"], limit, source, first_row)
    with torch.no_grad():
        hidden = last_hidden_state(encoder, {name: batch[name].to(device) for name in forward_input_names(encoder)})
    masks = batch["attention_mask"].to(device).bool()
    return hidden.float() * masks[..., None], masks


def token_states(encoder, tokenizer, metadata: dict, sequences, *, batch_size: int | None = None):
    """Last hidden state of every token (float32 [windows, tokens, hidden], zero at padding) and the padding mask
    [windows, tokens], `batch_size` windows at a time (None: `evaluate.default_batch_size`). Memory grows with the
    windows: call it on chunks of them. Mean-pooled states of many windows: `evaluate.embed_windows`."""
    from plasmidlm.evaluate import default_batch_size

    batch_size = batch_size or default_batch_size(next(encoder.parameters()).device)
    sequences = list(sequences)
    states, masks = [], []
    for begin in range(0, len(sequences), batch_size):
        hidden, mask = encoder_states(encoder, tokenizer, metadata, sequences[begin : begin + batch_size],
                                      first_row=begin)
        states.append(hidden.cpu().numpy())
        masks.append(mask.cpu().numpy())
    width = max(state.shape[1] for state in states)
    pad = [(0, 0), (0, 0)]
    states = np.concatenate([np.pad(s, [(0, 0), (0, width - s.shape[1]), (0, 0)]) for s in states])
    masks = np.concatenate([np.pad(m, pad[:1] + [(0, width - m.shape[1])]) for m in masks])
    return states, masks


def mean_pool(states: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean over the non-padding tokens of each window (not the [CLS] token alone), of states already on the host.

    `evaluate.mean_pool` computes the same on the device's tensors; its sums differ from these in the last bit
    (about 1e-7), so the embeddings baseline's test windows, pooled here, keep this one.
    """
    weights = masks[..., None].astype(states.dtype)
    return (states * weights).sum(axis=1) / weights.sum(axis=1)


def _token_cnn(hidden: int, n_classes: int, channels: int, kernel: int):
    import torch

    class TokenCNN(torch.nn.Module):
        """Convolution over per-token embeddings, max-pooled over non-padding positions."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(hidden, channels, kernel, padding=kernel // 2)
            self.dropout = torch.nn.Dropout(0.2)
            self.head = torch.nn.Linear(channels, n_classes)

        def forward(self, states, masks):
            features = torch.relu(self.conv(states.transpose(1, 2)))
            features = features.masked_fill(~masks[:, None, :], float("-inf")).amax(dim=2)
            return self.head(self.dropout(features))

    return TokenCNN()


def fit_token_cnn(batch_states, labels: np.ndarray, *, n_classes: int, hidden: int, epochs: int, seed: int,
                  channels: int = 64, kernel: int = 9, batch_size: int = 64, learning_rate: float = 1e-3,
                  device="cpu"):
    """A small 1D CNN over frozen per-token embeddings (class indices `labels`), trained with AdamW on `device`.

    `batch_states(rows)` gives the states and masks of the windows `rows` (tensors, see `encoder_states`): they
    are computed batch by batch, every epoch, so memory does not grow with the number of training windows.
    """
    import torch

    torch.manual_seed(seed)
    model = _token_cnn(hidden, n_classes, channels, kernel).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    labels_t = torch.tensor(np.array(labels, dtype=np.int64))
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(labels_t), generator=generator).split(batch_size):
            states, masks = batch_states(rows.numpy())
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(states.to(device), masks.to(device)),
                                                     labels_t[rows].to(device))
            loss.backward()
            optimizer.step()
    return model.eval()


def token_cnn_proba(model, states: np.ndarray, masks: np.ndarray, batch_size: int = 512) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = [model(torch.from_numpy(states[begin : begin + batch_size]).to(device),
                        torch.from_numpy(masks[begin : begin + batch_size]).to(device)).float().cpu()
                  for begin in range(0, len(states), batch_size)]
    return torch.softmax(torch.cat(logits), dim=-1).numpy()
