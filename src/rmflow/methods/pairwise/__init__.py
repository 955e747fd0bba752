"""The pairwise preference model family (pair_pm, rrm, ssrm; the judge reads its prompt): pm (prompt, rows, answer
tokens, loss) and model (training, the two-order scorer, tournaments)."""
