"""Data and measurement: FER2013 with its FER+ votes (:mod:`.datasets`), classification metrics
(:mod:`.metrics`), probabilities and temperatures (:mod:`.calibration`), and the evaluation of an exported model
on a split (:mod:`.heads`). Nothing here needs PyTorch."""
